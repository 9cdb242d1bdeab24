# SPDX-License-Identifier: MIT
# Sidekiq peer, worker side: the farm's per-entity work done the Sidekiq
# way.  EnrichJob#perform: GET BASE/item/{id} on a keep-alive Net::HTTP
# connection held per thread, JSON.parse, and on 200 HSET
# result:items:{id} title through Sidekiq's own Redis pool; 404 is "not
# found", anything else raises (Sidekiq retries).  Job logging is turned
# down to warnings (Sidekiq logs two lines per job at info).  When
# BENCH_N jobs are done it writes first_ms, last_ms and rss_hwm_kb as JSON
# to BENCH_OUT.  Run: sidekiq -r ./worker.rb -c 64 (BENCH_SOCK, BENCH_BASE,
# BENCH_N, BENCH_OUT in the environment).
require 'sidekiq'
require 'net/http'
require 'json'
require 'uri'

Sidekiq.configure_server do |config|
  config.redis = { path: ENV.fetch('BENCH_SOCK') }
  config.logger.level = Logger::WARN
end

module BenchClock
  LOCK = Mutex.new
  @first = 0
  @done = 0
  def self.start
    LOCK.synchronize { @first = (Time.now.to_f * 1000).to_i if @first.zero? }
  end

  def self.finish
    LOCK.synchronize do
      @done += 1
      return unless @done == ENV.fetch('BENCH_N').to_i
      hwm = File.read('/proc/self/status')[/VmHWM:\s+(\d+)/, 1].to_i
      out = { first_ms: @first, last_ms: (Time.now.to_f * 1000).to_i, rss_hwm_kb: hwm }
      File.write("#{ENV.fetch('BENCH_OUT')}.tmp", JSON.generate(out) + "\n")
      File.rename("#{ENV.fetch('BENCH_OUT')}.tmp", ENV.fetch('BENCH_OUT'))
    end
  end
end

class EnrichJob
  include Sidekiq::Worker
  sidekiq_options retry: 3
  BASE = URI(ENV.fetch('BENCH_BASE'))

  def http
    c = Thread.current[:bench_http]
    return c if c&.started?
    c = Net::HTTP.new(BASE.host, BASE.port)
    c.keep_alive_timeout = 30
    c.start
    Thread.current[:bench_http] = c
  end

  def perform(id)
    BenchClock.start
    res = http.request(Net::HTTP::Get.new("/item/#{id}"))
    case res.code.to_i
    when 200
      doc = JSON.parse(res.body)
      Sidekiq.redis { |r| r.hset("result:items:#{id}", 'title', doc['title'].to_s) }
    when 404
      nil
    else
      raise "HTTP #{res.code}"
    end
    BenchClock.finish
  end
end
