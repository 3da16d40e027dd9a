# frozen_string_literal: true

ENV["RAILS_ENV"] ||= "test"
require_relative "../config/environment"
require "rails/test_help"
require "sidekiq/testing"

Sidekiq::Testing.fake!
Sidekiq.logger.level = Logger::ERROR # BookProcessingJob warns about a missing book on purpose

class ActiveSupport::TestCase
  # Each test runs in a transaction that is rolled back.
  self.use_transactional_tests = true
end
