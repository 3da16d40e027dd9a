# frozen_string_literal: true

Rails.application.routes.draw do
  # GET / redirects: to /notices when signed in, to /login otherwise.
  root "home#show"

  get "/signup", to: "users#new", as: :signup
  post "/signup", to: "users#create"

  get "/login", to: "sessions#new", as: :login
  post "/login", to: "sessions#create"
  delete "/logout", to: "sessions#destroy", as: :logout

  resources :notices, only: %i[index create]

  # The load balancer's health check: a status and no body.
  get "/up", to: "up#show"
end
