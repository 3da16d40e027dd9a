# frozen_string_literal: true

require "test_helper"

class BookTest < ActiveSupport::TestCase
  test "a title is required" do
    book = Book.new(pages: 10)
    assert_not book.valid?
    assert_includes book.errors[:title], "can't be blank"
  end

  test "pages must be a positive integer when given" do
    assert_not Book.new(title: "x", pages: 0).valid?
    assert_not Book.new(title: "x", pages: "many").valid?
    assert Book.new(title: "x", pages: nil).valid?
  end

  test "status defaults to new" do
    assert_equal "new", Book.create!(title: "Dune").status
  end

  test "newest_first orders by creation, newest first" do
    older = Book.create!(title: "old", created_at: 2.days.ago)
    newer = Book.create!(title: "new")
    assert_equal [newer, older], Book.newest_first.to_a
  end
end
