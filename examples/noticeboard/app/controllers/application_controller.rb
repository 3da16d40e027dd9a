# frozen_string_literal: true

class ApplicationController < ActionController::Base
  # CSRF protection is on (load_defaults): every form carries an authenticity token, and a POST
  # without a valid one is a 422 (public/422.html).
  protect_from_forgery with: :exception

  helper_method :current_user, :board_name

  private

  def current_user
    return @current_user if defined?(@current_user)

    @current_user = session[:user_id] && User.find_by(id: session[:user_id])
  end

  def require_login
    redirect_to login_path, alert: "Please log in." unless current_user
  end

  def log_in(user)
    reset_session # a new session id on login (session fixation)
    session[:user_id] = user.id
  end

  def board_name
    Rails.configuration.x.settings[:board_name]
  end
end
