# frozen_string_literal: true

require "test_helper"

class HoldJobTest < ActiveSupport::TestCase
  test "marks the book processed once it has held" do
    book = Book.create!(title: "Long")
    HoldJob.new.perform(book.id, 0.2)
    assert_equal "processed", book.reload.status
  end

  test "a missing book is skipped" do
    assert_nothing_raised { HoldJob.new.perform(-1, 0) }
  end

  test "it goes on the books queue and is not retried" do
    HoldJob.jobs.clear
    HoldJob.perform_async(1, 5)
    assert_equal "books", HoldJob.jobs.last["queue"]
    assert_equal false, HoldJob.jobs.last["retry"]
  end
end
