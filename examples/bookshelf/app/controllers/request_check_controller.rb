# frozen_string_literal: true

# GET /request-check: the request as the app sees it behind nginx and the load balancer (the URL
# it would build, the scheme, the client's address), and GET /request-check/redirect: a redirect
# to /books, as an HTML app's are built (absolute, from the request's scheme, host and port).
class RequestCheckController < ApplicationController
  def show
    render json: { url: request.url, base_url: request.base_url, ssl: request.ssl?,
                   remote_ip: request.remote_ip }
  end

  def redirect
    redirect_to books_path
  end
end
