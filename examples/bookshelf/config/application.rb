# frozen_string_literal: true

require_relative "boot"

# Only the frameworks the app uses: no Action Mailer, Active Storage, Action Cable, Action Text,
# Action Mailbox, Action View templates or the asset pipeline.
require "rails"
require "active_model/railtie"
require "active_record/railtie"
require "action_controller/railtie"

# Require the gems listed in Gemfile (pg, sidekiq, redis; unicorn is require: false).
Bundler.require(*Rails.groups)

module Bookshelf
  class Application < Rails::Application
    config.load_defaults 6.1

    # JSON API only: ActionController::API and no cookies, sessions, flash or views.
    config.api_only = true

    config.time_zone = "UTC"
    config.active_record.default_timezone = :utc

    # No config/credentials.yml.enc: secrets come from the environment (SECRET_KEY_BASE).
    config.require_master_key = false

    # Errors the controllers do not handle (no route, a malformed JSON body, a bug) answer in
    # JSON too, whatever the client asked for: there is no public/ directory of HTML pages.
    config.exceptions_app = lambda do |env|
      status = env["PATH_INFO"].to_s.delete_prefix("/").to_i
      status = 500 unless Rack::Utils::HTTP_STATUS_CODES.key?(status)
      body = { status: status, error: Rack::Utils::HTTP_STATUS_CODES[status] }.to_json
      [status, { "Content-Type" => "application/json; charset=utf-8",
                 "Content-Length" => body.bytesize.to_s }, [body]]
    end
  end
end
