# One request of a Rack application whose sessions are kept by redis-rack
# (Debian ruby-redis-rack): Rack::Session::Redis in front of the app,
# the session id in a cookie.
#
# Usage: HATCHECK_ADDR=host:port [SESSION_TTL=s] ruby rack_session.rb ACTION [ID]
# Actions as in ../php/session.php.
require "json"
require "rack"
require "rack/session/redis"

action, id = ARGV
addr = ENV.fetch("HATCHECK_ADDR")
pass = ENV["HATCHECK_PASSWORD"].to_s
url = pass.empty? ? "redis://#{addr}/0" : "redis://:#{pass}@#{addr}/0"

out = nil
app = lambda do |env|
  session = env["rack.session"]
  case action
  when "create"
    session["n"] = 0
    session["user"] = "alice"
  when "read"
    data = session.to_hash.reject { |k, _| k == "session_id" }
    out = data.empty? ? "[]" : JSON.generate(data.sort.to_h)
  when "incr"
    n = session["n"]
    sleep 0.03
    session["n"] = n + 1
  when "regenerate"
    session["n"] # load it: rack only renews a loaded session
    env["rack.session.options"][:renew] = true
  when "destroy"
    session["n"]
    env["rack.session.options"][:drop] = true
  else
    abort "unknown action #{action}"
  end
  [200, {}, ["ok"]]
end

stack = Rack::Session::Redis.new(app, redis_server: url, expire_after: Integer(ENV.fetch("SESSION_TTL", "1440")))
headers = {}
headers["HTTP_COOKIE"] = "rack.session=#{id}" if id
_, resp_headers, = stack.call(Rack::MockRequest.env_for("/", headers))
cookie = resp_headers["Set-Cookie"].to_s[/rack\.session=([^;]*)/, 1]
puts out if out
puts cookie if %w[create regenerate].include?(action)
