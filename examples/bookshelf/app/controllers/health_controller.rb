# frozen_string_literal: true

# GET /health: what the load balancer and the deploy's health check ask.
class HealthController < ApplicationController
  def show
    ActiveRecord::Base.connection.select_value("SELECT 1")
    render json: { status: "ok", database: "ok", release: ENV["FARMHAND_RELEASE"] }
  rescue StandardError => e
    # PG::ConnectionBad, ActiveRecord::ConnectionNotEstablished, ActiveRecord::StatementInvalid...
    logger.warn("health: database check failed: #{e.class}: #{e.message.lines.first&.strip}")
    render json: { status: "error", database: "unreachable", error: e.class.name,
                   release: ENV["FARMHAND_RELEASE"] },
           status: :service_unavailable
  end
end
