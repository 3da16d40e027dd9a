# frozen_string_literal: true

require "test_helper"

class NotifierTest < ActiveSupport::TestCase
  test "a pass delivers the pending notices once and says so" do
    user = create_user
    first = user.notices.create!(title: "First")
    second = user.notices.create!(title: "Second")
    notifier = Notifier.new(interval: 0.1)

    output, = capture_io { assert_equal 2, notifier.deliver_pending }
    assert_match(/delivered notice #{first.id} "First" from alice@example\.test/, output)
    assert_match(/delivered notice #{second.id} "Second"/, output)
    assert first.reload.delivered?
    assert second.reload.delivered?

    output, = capture_io { assert_equal 0, notifier.deliver_pending }
    assert_empty output
  end
end
