# frozen_string_literal: true

# GET /: nothing to show by itself; send the visitor where they can do something.
class HomeController < ApplicationController
  def show
    redirect_to current_user ? notices_path : login_path
  end
end
