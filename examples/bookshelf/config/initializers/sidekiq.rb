# frozen_string_literal: true

# Sidekiq (the worker: `bundle exec sidekiq -q books`; the client: web processes and
# `rails runner`) talks to the Redis at REDIS_URL.
redis_options = { url: ENV.fetch("REDIS_URL", "redis://127.0.0.1:6379/0") }

Sidekiq.configure_server do |config|
  config.redis = redis_options
end

Sidekiq.configure_client do |config|
  config.redis = redis_options
end

# redis-rb 4.8 (Debian bookworm's ruby-redis) warns on stderr about every call whose behaviour
# changes in redis-rb 5, and Sidekiq 6.4.1 (ruby-sidekiq) makes two such calls forever:
#   - its fetcher, every 2 s per worker thread: "Passing the timeout as a positional argument is
#     deprecated, it should be passed as a keyword argument: redis.brpop(..., timeout: 2)";
#   - its heartbeat: "Redis#sadd will always return an Integer in Redis 5.0.0".
# Neither can be fixed from the app (they are inside Sidekiq), and Sidekiq never reads what
# sadd returns. So: take redis-rb 5's sadd/srem behaviour now, which removes the second warning
# at its source, and silence redis-rb's deprecation channel, which removes the first. The
# respond_to? guards keep this working on a redis-rb that no longer has these switches.
Redis.sadd_returns_boolean = false if Redis.respond_to?(:sadd_returns_boolean=)
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)
