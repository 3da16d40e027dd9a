# frozen_string_literal: true

ENV["RAILS_ENV"] ||= "test"
require_relative "../config/environment"
require "rails/test_help"

class ActiveSupport::TestCase
  # Each test runs in a transaction that is rolled back.
  self.use_transactional_tests = true

  def create_user(email = "alice@example.test")
    User.create!(email: email, password: "password1", password_confirmation: "password1")
  end
end

class ActionDispatch::IntegrationTest
  def log_in(email = "alice@example.test", password = "password1")
    post "/login", params: { email: email, password: password }
  end
end
