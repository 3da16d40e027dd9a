# frozen_string_literal: true

# unicorn's configuration on Heroku (`web: bundle exec unicorn -p $PORT -c ./config/unicorn.rb`).
# Heroku routes to $PORT; the listen address comes from -p.
worker_processes Integer(ENV.fetch("WEB_CONCURRENCY", 3))
timeout 15
preload_app true

before_fork do |_server, _worker|
  Signal.trap "TERM" do
    puts "unicorn master intercepting TERM and sending myself QUIT instead"
    Process.kill "QUIT", Process.pid
  end

  ActiveRecord::Base.connection.disconnect! if defined?(ActiveRecord::Base)
end

after_fork do |_server, _worker|
  Signal.trap "TERM" do
    puts "unicorn worker intercepting TERM and doing nothing. Wait for master to send QUIT"
  end

  ActiveRecord::Base.establish_connection if defined?(ActiveRecord::Base)
end
