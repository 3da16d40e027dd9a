# frozen_string_literal: true

# What BookProcessingJob finds and leaves on a book: its source PDF in the app's S3 bucket, the
# page count and rendered height, where the per-page PDFs, the cover thumbnail and the encrypted
# copy went, when it finished, and why it failed if it did.
class AddProcessingToBooks < ActiveRecord::Migration[6.1]
  def change
    change_table :books, bulk: true do |t|
      t.string :source_key
      t.integer :rendered_height
      t.integer :rendered_pages
      t.string :pages_prefix
      t.string :thumbnail_key
      t.string :encrypted_key
      t.datetime :processed_at, precision: 6
      t.string :error
    end
  end
end
