# frozen_string_literal: true

require "test_helper"

class BoardTest < ActionDispatch::IntegrationTest
  test "GET / sends a visitor to the login form" do
    get "/"
    assert_redirected_to "/login"
    follow_redirect!
    assert_response :ok
    assert_select "form#login"
  end

  test "the notices need a login" do
    get "/notices"
    assert_redirected_to "/login"
  end

  test "sign up, post a notice, see it pending, log out" do
    post "/signup", params: { user: { email: "Bob@Example.test", password: "password1",
                                      password_confirmation: "password1" } }
    assert_redirected_to "/notices"

    post "/notices", params: { notice: { title: "Boiler service", body: "Friday 9-11" } }
    assert_redirected_to "/notices"
    follow_redirect!
    assert_select "#notices li", text: /Boiler service.*bob@example\.test.*pending/m

    delete "/logout"
    assert_redirected_to "/login"
    get "/notices"
    assert_redirected_to "/login"
  end

  test "a wrong password or an invalid notice is a 422 with the form again" do
    create_user
    log_in("alice@example.test", "nope")
    assert_response :unprocessable_entity
    assert_select "form#login"

    log_in
    assert_redirected_to "/notices"
    post "/notices", params: { notice: { title: "" } }
    assert_response :unprocessable_entity
    assert_select ".errors", text: /Title can't be blank/
  end

  test "GET /up is a status without a body" do
    get "/up"
    assert_response :ok
    assert_empty response.body
  end

  test "redirects follow X-Forwarded-Proto and the Host" do
    get "/", headers: { "Host" => "example.test:8080", "X-Forwarded-Proto" => "https" }
    assert_equal "https://example.test:8080/login", response.location
  end
end
