# frozen_string_literal: true

class CreateNotices < ActiveRecord::Migration[6.1]
  def change
    create_table :notices do |t|
      t.references :user, null: false, foreign_key: true
      t.string :title, null: false
      t.text :body
      # Set by the notifier worker when it delivers the notice; NULL until then.
      t.datetime :delivered_at
      t.timestamps
    end
    # What the notifier asks every pass: the notices not delivered yet.
    add_index :notices, :id, where: "delivered_at IS NULL", name: "index_notices_undelivered"
  end
end
