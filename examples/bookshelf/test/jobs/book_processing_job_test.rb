# frozen_string_literal: true

require "test_helper"

class BookProcessingJobTest < ActiveSupport::TestCase
  test "marks the book processed" do
    book = Book.create!(title: "Dune")
    BookProcessingJob.new.perform(book.id)
    assert_equal "processed", book.reload.status
  end

  test "a missing book is skipped" do
    assert_nothing_raised { BookProcessingJob.new.perform(-1) }
  end

  test "it goes on the books queue" do
    BookProcessingJob.jobs.clear
    BookProcessingJob.perform_async(1)
    assert_equal "books", BookProcessingJob.jobs.last["queue"]
  end
end
