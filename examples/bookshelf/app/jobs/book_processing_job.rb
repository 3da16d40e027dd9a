# frozen_string_literal: true

require "tmpdir"

# Processes one book on the "books" queue (BookProcessor: page count, per-page PDFs, cover
# thumbnail, encrypted copy, all to the app's S3 bucket) and records the outcome on the book:
# "processing" while it runs, then "processed" with what it made, or "failed" with the reason
# (Sidekiq retries it). A book with no source PDF has nothing to process: it is marked processed.
class BookProcessingJob
  include Sidekiq::Worker
  sidekiq_options queue: "books"

  def perform(book_id)
    book = Book.find_by(id: book_id)
    if book.nil?
      logger.warn("BookProcessingJob: no book #{book_id}, skipping")
      return
    end
    if book.source_key.blank?
      book.update!(status: "processed", processed_at: Time.current)
      return
    end

    book.update!(status: "processing", error: nil)
    results = Dir.mktmpdir("book-#{book.id}-") { |dir| BookProcessor.new(book, dir).run }
    book.update!(results.merge(status: "processed", processed_at: Time.current))
    logger.info("BookProcessingJob: book #{book.id} processed, #{results[:pages]} pages")
  rescue StandardError => e
    book&.update_columns(status: "failed", error: "#{e.class}: #{e.message}"[0, 255], updated_at: Time.current)
    raise
  end
end
