# frozen_string_literal: true

# GET /up: the load balancer's health check. A status and nothing else: 200 when the database
# answers SELECT 1, 503 when it does not. No body, no session cookie, no login.
class UpController < ActionController::Base
  def show
    ActiveRecord::Base.connection.select_value("SELECT 1")
    head :ok
  rescue StandardError => e
    # PG::ConnectionBad, ActiveRecord::ConnectionNotEstablished, ActiveRecord::StatementInvalid...
    logger.warn("up: database check failed: #{e.class}: #{e.message.lines.first&.strip}")
    head :service_unavailable
  end
end
