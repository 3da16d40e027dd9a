# frozen_string_literal: true

# GET /env-check?key=NAME: the value of one environment variable, for tests that prove config
# vars reach the processes. Only the names listed in FARMHAND_ENV_CHECK_KEYS (comma-separated)
# are answered; any other name, or none at all, is a 404.
class EnvCheckController < ApplicationController
  def show
    key = params[:key].to_s
    if key.empty? || !allowed_keys.include?(key)
      render json: { error: "not found" }, status: :not_found
    else
      render json: { key: key, value: ENV[key] }
    end
  end

  private

  def allowed_keys
    ENV.fetch("FARMHAND_ENV_CHECK_KEYS", "").split(",").map(&:strip).reject(&:empty?)
  end
end
