# frozen_string_literal: true

# Holds a worker thread for a number of seconds, the way a long book job does, marking its book
# "processing" and then "processed". Tests use it to prove a long job survives a worker's stop, a
# deploy or a config change: the book ends "processed", never left "processing" by a killed job.
# Queue "books" unless pushed onto another (e.g. with redis-cli, or `HoldJob.set(queue: ...)`).
class HoldJob
  include Sidekiq::Worker
  sidekiq_options queue: "books", retry: false

  def perform(book_id, seconds)
    book = Book.find_by(id: book_id)
    if book.nil?
      logger.warn("HoldJob: no book #{book_id}, skipping")
      return
    end

    book.update!(status: "processing")
    logger.info("HoldJob: holding book #{book_id} for #{seconds}s")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds.to_f
    loop do
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      break if left <= 0

      sleep([left, 0.5].min)
    end
    book.update!(status: "processed")
    logger.info("HoldJob: book #{book_id} processed")
  end
end
