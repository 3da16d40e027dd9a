# frozen_string_literal: true

# The board: GET /notices lists the notices with their delivery state, POST /notices posts one
# (the notifier worker delivers it a moment later).
class NoticesController < ApplicationController
  before_action :require_login

  def index
    @notice = Notice.new
    load_notices
  end

  def create
    @notice = current_user.notices.build(notice_params)
    if @notice.save
      redirect_to notices_path, notice: "Notice posted."
    else
      load_notices
      render :index, status: :unprocessable_entity
    end
  end

  private

  def notice_params
    params.require(:notice).permit(:title, :body)
  end

  def load_notices
    @notices = Notice.includes(:user).newest_first
                     .limit(Rails.configuration.x.settings[:notices_per_page])
  end
end
