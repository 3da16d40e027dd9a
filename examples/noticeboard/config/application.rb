# frozen_string_literal: true

require_relative "boot"

# The frameworks an HTML app uses: Active Record, Action Controller and Action View (ERB
# templates). No Action Mailer, Active Job, Active Storage, Action Cable, Action Text,
# Action Mailbox, asset pipeline or node.
require "rails"
require "active_model/railtie"
require "active_record/railtie"
require "action_controller/railtie"
require "action_view/railtie"

# Require the gems listed in Gemfile (pg, bcrypt; unicorn is require: false).
Bundler.require(*Rails.groups)

module Noticeboard
  class Application < Rails::Application
    config.load_defaults 6.1

    config.time_zone = "UTC"
    config.active_record.default_timezone = :utc

    # No config/credentials.yml.enc: secrets come from the environment (SECRET_KEY_BASE).
    config.require_master_key = false

    # config/settings.yml is a symlink to ../deploy/settings.yml, like config/database.yml: the
    # team keeps its deploy-time configuration in deploy/ and Rails reads it where it expects it.
    config.x.settings = config_for(:settings)

    config.generators.system_tests = nil
  end
end
