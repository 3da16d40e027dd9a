# frozen_string_literal: true

Rails.application.configure do
  # Code is not reloaded between requests and is loaded at boot (unicorn forks after that).
  config.cache_classes = true
  config.eager_load = true

  # Full error reports are disabled; errors are the pages in public/.
  config.consider_all_requests_local = false
  config.action_controller.perform_caching = true

  # Heroku's convention: public/ is served by the app only when RAILS_SERVE_STATIC_FILES is set.
  config.public_file_server.enabled = ENV["RAILS_SERVE_STATIC_FILES"].present?

  # The app runs behind a load balancer that ends TLS: no redirect to https here. Rails still
  # builds its URLs (redirects) from X-Forwarded-Proto and X-Forwarded-Host, as it does by default.
  config.force_ssl = false

  config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "info").to_sym
  config.log_tags = [:request_id]
  config.log_formatter = ::Logger::Formatter.new

  # Heroku's convention: log to STDOUT (journald, a log drain) when RAILS_LOG_TO_STDOUT is set,
  # else to log/production.log.
  if ENV["RAILS_LOG_TO_STDOUT"].present?
    logger = ActiveSupport::Logger.new($stdout)
    logger.formatter = config.log_formatter
    config.logger = ActiveSupport::TaggedLogging.new(logger)
  end

  config.i18n.fallbacks = true
  config.active_support.deprecation = :notify
  config.active_support.disallowed_deprecation = :log
  config.active_support.disallowed_deprecation_warnings = []

  # Migrations run at release time on a deploy host; nobody reads db/schema.rb there.
  config.active_record.dump_schema_after_migration = false
end
