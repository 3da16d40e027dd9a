# frozen_string_literal: true

Rails.application.configure do
  # Code is not reloaded between requests and is loaded at boot (unicorn forks after that).
  config.cache_classes = true
  config.eager_load = true

  # Full error reports are disabled; errors are JSON from the controllers.
  config.consider_all_requests_local = false

  # No public/ directory to serve: the app is a JSON API behind a load balancer.
  config.public_file_server.enabled = false

  config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "info").to_sym
  config.log_tags = [:request_id]
  config.log_formatter = ::Logger::Formatter.new

  # Heroku's convention: log to STDOUT (journald, a log drain) when RAILS_LOG_TO_STDOUT is set,
  # else to log/production.log (which the deploy may point at a shared directory).
  if ENV["RAILS_LOG_TO_STDOUT"].present?
    logger = ActiveSupport::Logger.new($stdout)
    logger.formatter = config.log_formatter
    config.logger = ActiveSupport::TaggedLogging.new(logger)
  end

  config.i18n.fallbacks = true
  config.active_support.deprecation = :notify
  config.active_support.disallowed_deprecation = :log
  config.active_support.disallowed_deprecation_warnings = []

  # Migrations run on the deploy host; nobody reads db/schema.rb there.
  config.active_record.dump_schema_after_migration = false
end
