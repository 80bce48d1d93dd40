# frozen_string_literal: true

require "monitor"

# Request throttling for the public API.
module Throttle
  # Raised when a caller exceeds its budget.
  class LimitExceeded < StandardError; end

  DEFAULT_RATE = 10

  # A token bucket refilled continuously.
  class TokenBucket
    include MonitorMixin

    attr_reader :capacity, :rate

    def initialize(capacity, rate = DEFAULT_RATE)
      super()
      @capacity = capacity
      @rate = rate
      @tokens = capacity.to_f
      @stamp = clock
    end

    # Takes +cost+ tokens or raises LimitExceeded.
    def take!(cost = 1)
      synchronize do
        refill
        raise LimitExceeded, "need #{cost}, have #{@tokens.floor}" if @tokens < cost

        @tokens -= cost
      end
    end

    def take(cost = 1)
      take!(cost)
      true
    rescue LimitExceeded
      false
    end

    # Builds a bucket from a config hash.
    def self.from_config(config)
      new(config.fetch(:capacity), config.fetch(:rate, DEFAULT_RATE))
    end

    private

    def refill
      now = clock
      @tokens = [@capacity, @tokens + (now - @stamp) * @rate].min
      @stamp = now
    end

    def clock = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  class << self
    # One shared bucket per key.
    def bucket_for(key)
      buckets[key] ||= TokenBucket.new(DEFAULT_RATE)
    end

    private

    def buckets
      @buckets ||= {}
    end
  end
end

class Throttle::Middleware
  def initialize(app)
    @app = app
  end

  def call(env)
    Throttle.bucket_for(env["REMOTE_ADDR"]).take!
    @app.call(env)
  rescue Throttle::LimitExceeded
    [429, {}, ["slow down"]]
  end
end
