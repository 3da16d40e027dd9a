# frozen_string_literal: true

Rails.application.routes.draw do
  resources :books, only: %i[index show create] do
    # Enqueue BookProcessingJob for this book (proves web -> Redis -> worker -> database).
    post :process, on: :member, action: :enqueue_processing
  end

  get "/health", to: "health#show"
  get "/env-check", to: "env_check#show"
  get "/version", to: "version#show"
  get "/request-check", to: "request_check#show"
  get "/request-check/redirect", to: "request_check#redirect"
end
