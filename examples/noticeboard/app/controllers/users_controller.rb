# frozen_string_literal: true

# Sign up: GET /signup shows the form, POST /signup creates the user and logs them in.
class UsersController < ApplicationController
  def new
    @user = User.new
  end

  def create
    @user = User.new(user_params)
    if @user.save
      log_in(@user)
      redirect_to notices_path, notice: "Welcome, #{@user.email}."
    else
      render :new, status: :unprocessable_entity
    end
  end

  private

  def user_params
    params.require(:user).permit(:email, :password, :password_confirmation)
  end
end
