# frozen_string_literal: true

# This file is used by Rack-based servers (unicorn) to start the application.
require_relative "config/environment"

run Rails.application
Rails.application.load_server
