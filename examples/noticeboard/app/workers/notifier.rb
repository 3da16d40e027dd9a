# frozen_string_literal: true

# The notifier process type (Procfile: `notifier: bin/rails runner 'Notifier.run'`).
#
# A long-running loop: every `notifier_interval` seconds (deploy/settings.yml, NOTIFIER_INTERVAL)
# it takes the notices not delivered yet, marks each delivered (delivered_at) and writes one line
# per notice to STDOUT. "Delivering" stands for what a real app would do there (mail, a webhook).
#
# SIGTERM or SIGINT: the current pass finishes, then run returns and the process exits 0.
# Several notifiers may run at once: a pass locks the rows it delivers (FOR UPDATE SKIP LOCKED),
# so no notice is delivered twice.
class Notifier
  BATCH = 100

  def self.run(interval: Rails.configuration.x.settings[:notifier_interval])
    new(interval: Float(interval)).run
  end

  def initialize(interval:)
    @interval = interval
    @stopping = false
  end

  def run
    $stdout.sync = true
    %w[TERM INT].each { |signal| Signal.trap(signal) { @stopping = true } }
    say "started, a pass every #{@interval}s"
    until @stopping
      deliver_pending
      pause
    end
    say "stopped"
  end

  # One pass: every undelivered notice, oldest first, in batches. Returns how many it delivered.
  def deliver_pending
    delivered = 0
    loop do
      batch = deliver_batch
      delivered += batch
      break if batch < BATCH || @stopping
    end
    delivered
  rescue ActiveRecord::ActiveRecordError, PG::Error => e
    # The database is down or restarting: say so and try again at the next pass.
    warn "notifier: pass failed: #{e.class}: #{e.message.lines.first&.strip}"
    ActiveRecord::Base.clear_active_connections!
    0
  end

  private

  def deliver_batch
    Notice.transaction do
      notices = Notice.undelivered.includes(:user).order(:id).limit(BATCH)
                      .lock("FOR UPDATE OF notices SKIP LOCKED").to_a
      notices.each do |notice|
        notice.update_columns(delivered_at: Time.current)
        say "delivered notice #{notice.id} #{notice.title.inspect} from #{notice.user.email}"
      end
      notices.size
    end
  end

  # Sleep until the next pass, waking early when asked to stop.
  def pause
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + @interval
    sleep 0.1 while !@stopping && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
  end

  def say(line)
    $stdout.puts "notifier: #{line}"
  end
end
