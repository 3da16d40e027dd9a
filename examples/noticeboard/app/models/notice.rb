# frozen_string_literal: true

class Notice < ApplicationRecord
  belongs_to :user

  validates :title, presence: true, length: { maximum: 200 }
  validates :body, length: { maximum: 2000 }

  scope :newest_first, -> { order(created_at: :desc, id: :desc) }
  scope :undelivered, -> { where(delivered_at: nil) }

  def delivered?
    delivered_at.present?
  end
end
