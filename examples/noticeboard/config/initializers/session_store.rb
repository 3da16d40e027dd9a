# frozen_string_literal: true

# The signed-in user lives in an encrypted cookie (signed with SECRET_KEY_BASE): no server-side
# session store, so any web host can answer any request.
Rails.application.config.session_store :cookie_store, key: "_noticeboard_session"
