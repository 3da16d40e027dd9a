# frozen_string_literal: true

class User < ApplicationRecord
  # password and password_confirmation, stored as a bcrypt digest in password_digest.
  has_secure_password

  has_many :notices, dependent: :destroy

  before_validation { self.email = email.to_s.strip.downcase }

  validates :email, presence: true, length: { maximum: 255 },
                    format: { with: /\A[^@\s]+@[^@\s]+\z/ }, uniqueness: true
  validates :password, length: { minimum: 8 }, allow_nil: true
end
