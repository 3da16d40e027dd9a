# frozen_string_literal: true

# Log in (GET /login, POST /login) and out (DELETE /logout).
class SessionsController < ApplicationController
  def new; end

  def create
    user = User.find_by(email: params[:email].to_s.strip.downcase)
    if user&.authenticate(params[:password].to_s)
      log_in(user)
      redirect_to notices_path, notice: "Logged in as #{user.email}."
    else
      flash.now[:alert] = "Wrong email or password."
      render :new, status: :unprocessable_entity
    end
  end

  def destroy
    reset_session
    redirect_to login_path, notice: "Logged out."
  end
end
