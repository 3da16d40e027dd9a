# frozen_string_literal: true

# Processes one book on the "books" queue (run by `bundle exec sidekiq -q books`). For now it only
# marks the book processed; the real PDF processing comes later.
class BookProcessingJob
  include Sidekiq::Worker
  sidekiq_options queue: "books"

  def perform(book_id)
    book = Book.find_by(id: book_id)
    if book.nil?
      logger.warn("BookProcessingJob: no book #{book_id}, skipping")
      return
    end

    book.update!(status: "processed")
  end
end
