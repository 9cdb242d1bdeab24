# SPDX-License-Identifier: MIT
# Sidekiq peer, enqueue side: one Sidekiq job per entity, pushed with
# Sidekiq::Client.push_bulk in batches of 1000 (Sidekiq's documented bulk
# path: one LPUSH per batch).  usage: ruby enqueue.rb REDIS_SOCKET IDS_FILE
require 'sidekiq'

Sidekiq.configure_client { |config| config.redis = { path: ARGV[0] } }
ids = File.readlines(ARGV[1], chomp: true).reject(&:empty?)
ids.each_slice(1000) do |batch|
  Sidekiq::Client.push_bulk('class' => 'EnrichJob', 'args' => batch.map { |id| [id] })
end
puts ids.size
