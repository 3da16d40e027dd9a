# frozen_string_literal: true

class Book < ApplicationRecord
  STATUSES = %w[new processing processed failed].freeze

  validates :title, presence: true, length: { maximum: 255 }
  validates :pages, numericality: { only_integer: true, greater_than: 0 }, allow_nil: true
  validates :status, inclusion: { in: STATUSES }

  scope :newest_first, -> { order(created_at: :desc, id: :desc) }
end
