# frozen_string_literal: true

# Holds a worker thread for a number of seconds, the way a long book job does, marking its book
# "processing" and then "processed". Tests use it to prove a long job survives a worker's stop, a
# deploy or a config change: the book ends "processed", never left "processing" by a killed job.
# Queue "books" unless pushed onto another (e.g. with redis-cli, or `HoldJob.set(queue: ...)`).
#
# With a release key, the job also holds until that Redis key exists (at least `seconds` still),
# so a test can keep it running across operations of unknown length. Each run leaves a record in
# Redis, hold_job:<book_id>: how many times the job started (a retried or re-queued job starts
# more than once), the systemd unit (Sidekiq process generation) it started in and finished in.
class HoldJob
  include Sidekiq::Worker
  sidekiq_options queue: "books", retry: false

  def perform(book_id, seconds, release_key = nil)
    book = Book.find_by(id: book_id)
    if book.nil?
      logger.warn("HoldJob: no book #{book_id}, skipping")
      return
    end

    record = "hold_job:#{book_id}"
    note(record) do |r|
      r.hincrby(record, "starts", 1)
      r.hset(record, "started_in", unit, "started_at", Time.now.utc.iso8601(3))
    end
    book.update!(status: "processing")
    logger.info("HoldJob: holding book #{book_id} for #{seconds}s#{" and until #{release_key}" if release_key}")
    hold(seconds.to_f, release_key)
    book.update!(status: "processed")
    note(record) { |r| r.hset(record, "finished_in", unit, "finished_at", Time.now.utc.iso8601(3)) }
    logger.info("HoldJob: book #{book_id} processed")
  end

  private

  def hold(seconds, release_key)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    loop do
      left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
      break if left <= 0 && (release_key.nil? || Sidekiq.redis { |r| r.exists?(release_key) })

      sleep(left.positive? ? [left, 0.5].min : 0.5)
    end
  end

  # The run's record in Redis; without Redis (the app's own tests) the job runs all the same.
  def note(record, &block)
    Sidekiq.redis(&block)
  rescue Redis::BaseError => e
    logger.warn("HoldJob: no record in #{record}: #{e.class}")
  end

  # The systemd unit of this Sidekiq process (its generation), from its cgroup; "" elsewhere.
  def unit
    File.read("/proc/self/cgroup")[%r{[^/\s]+\.service}].to_s
  rescue SystemCallError
    ""
  end
end
