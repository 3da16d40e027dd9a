# frozen_string_literal: true

class CreateBooks < ActiveRecord::Migration[6.1]
  def change
    create_table :books do |t|
      t.string :title, null: false
      t.integer :pages
      t.string :status, null: false, default: "new"

      t.timestamps
    end

    add_index :books, :created_at
  end
end
