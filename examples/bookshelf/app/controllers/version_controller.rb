# frozen_string_literal: true

# GET /version: the release Farmhand says is running and the revision the deploy wrote into
# REVISION in the app root (null when there is no such file).
class VersionController < ApplicationController
  def show
    render json: { release: ENV["FARMHAND_RELEASE"], revision: revision }
  end

  private

  def revision
    path = Rails.root.join("REVISION")
    path.file? ? path.read.strip.presence : nil
  rescue SystemCallError
    nil
  end
end
