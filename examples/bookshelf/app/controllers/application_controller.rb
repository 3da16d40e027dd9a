# frozen_string_literal: true

class ApplicationController < ActionController::API
  rescue_from ActiveRecord::RecordNotFound do
    render json: { error: "not found" }, status: :not_found
  end

  rescue_from ActionController::ParameterMissing do |e|
    render json: { error: e.message }, status: :bad_request
  end

  # The database is down or unreachable: a 503 the load balancer understands, not a 500.
  rescue_from ActiveRecord::ConnectionNotEstablished do |e|
    logger.warn("database unavailable: #{e.class}: #{e.message.lines.first&.strip}")
    render json: { error: "database unavailable" }, status: :service_unavailable
  end
end
