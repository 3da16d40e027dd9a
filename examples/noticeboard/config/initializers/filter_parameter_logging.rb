# frozen_string_literal: true

# Keep passwords and tokens out of the log.
Rails.application.config.filter_parameters += %i[password password_confirmation authenticity_token]
