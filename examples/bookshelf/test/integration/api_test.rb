# frozen_string_literal: true

require "test_helper"

class ApiTest < ActionDispatch::IntegrationTest
  def json
    JSON.parse(response.body)
  end

  test "create from a nested body, then list newest first and show" do
    post "/books", params: { book: { title: "First", pages: 100 } }, as: :json
    assert_response :created
    first = json
    assert_equal "First", first["title"]
    assert_equal 100, first["pages"]
    assert_equal "new", first["status"]

    post "/books", params: { title: "Second" }, as: :json
    assert_response :created

    get "/books"
    assert_response :ok
    assert_equal %w[Second First], json.map { |b| b["title"] }.first(2)

    get "/books/#{first['id']}"
    assert_response :ok
    assert_equal "First", json["title"]
  end

  test "an invalid book is a 422 with errors" do
    post "/books", params: { book: { pages: -1 } }, as: :json
    assert_response :unprocessable_entity
    assert json["errors"].key?("title")
    assert json["errors"].key?("pages")
  end

  test "an unknown book is a 404" do
    get "/books/0"
    assert_response :not_found
  end

  test "processing a book enqueues the job" do
    BookProcessingJob.jobs.clear
    book = Book.create!(title: "Dune")
    post "/books/#{book.id}/process"
    assert_response :accepted
    assert_equal [book.id], BookProcessingJob.jobs.last["args"]
  end

  test "health reports the database and the release" do
    with_env("FARMHAND_RELEASE" => "v42") do
      get "/health"
      assert_response :ok
      assert_equal({ "status" => "ok", "database" => "ok", "release" => "v42" }, json)
    end
  end

  test "env-check answers only the listed keys" do
    with_env("FARMHAND_ENV_CHECK_KEYS" => "FOO, BAR", "FOO" => "hello", "SECRET" => "no") do
      get "/env-check", params: { key: "FOO" }
      assert_response :ok
      assert_equal({ "key" => "FOO", "value" => "hello" }, json)

      get "/env-check", params: { key: "BAR" }
      assert_response :ok
      assert_nil json["value"]

      get "/env-check", params: { key: "SECRET" }
      assert_response :not_found

      get "/env-check"
      assert_response :not_found
    end
  end

  test "version reports the release and the REVISION file" do
    path = Rails.root.join("REVISION")
    existed = path.exist?
    saved = path.read if existed
    path.write("abc123\n")
    with_env("FARMHAND_RELEASE" => "v7") do
      get "/version"
      assert_equal({ "release" => "v7", "revision" => "abc123" }, json)
    end
  ensure
    existed ? path.write(saved) : path.delete
  end

  private

  def with_env(vars)
    saved = vars.keys.to_h { |k| [k, ENV[k]] }
    vars.each { |k, v| ENV[k] = v }
    yield
  ensure
    saved.each { |k, v| ENV[k] = v }
  end
end
