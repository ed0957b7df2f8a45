// Process resources: reads render the same text the stdout tool gives; updates are sent at
// once when the last one is older than kMinInterval, else once when the interval is over.
#include "tools/resources.hpp"

#include "process/text_projection.hpp"
#include "util/text.hpp"

namespace pmcp::tools {

namespace {
constexpr std::string_view kScheme = "process://";
const char* const kParts[] = {"stdout", "stderr", "screen", "info"};
}  // namespace

ProcessResources::ProcessResources(ToolContext& ctx, mcp::Dispatcher& dispatcher)
    : ctx_(ctx), dispatcher_(dispatcher) {}

ProcessResources::~ProcessResources() {
  for (auto& [uri, sub] : subscriptions_) {
    if (sub.timer) sub.timer->cancel();
  }
}

bool ProcessResources::parse_uri(std::string_view uri, std::string& id, std::string& part) {
  if (!uri.starts_with(kScheme)) return false;
  uri.remove_prefix(kScheme.size());
  auto slash = uri.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  id = std::string(uri.substr(0, slash));
  part = std::string(uri.substr(slash + 1));
  for (const char* p : kParts) {
    if (part == p) return true;
  }
  return false;
}

json::array ProcessResources::list(mcp::SessionKey session) {
  json::array out;
  for (const auto& p : ctx_.registry.list()) {
    if (!visible(ctx_, *p, session)) continue;
    for (const char* part : kParts) {
      std::string_view name = part;
      if (name == "screen" && !p->tty) continue;
      if (name == "stderr" && p->tty) continue;
      std::string uri = std::string(kScheme) + p->id + "/" + part;
      out.push_back(json::object{
          {"uri", uri},
          {"name", p->id + " " + part},
          {"description", text::sanitize_utf8(p->command)},
          {"mimeType", name == "info" ? "application/json" : "text/plain"}});
    }
  }
  return out;
}

json::array ProcessResources::templates() {
  json::array out;
  const std::pair<const char*, const char*> parts[] = {
      {"stdout", "Output of a process (a tty process: its terminal stream, escapes removed)"},
      {"stderr", "Error output of a pipe process"},
      {"screen", "The current screen of a tty process"},
      {"info", "Status of a process as JSON (as in ps)"}};
  for (const auto& [part, description] : parts) {
    out.push_back(json::object{{"uriTemplate", std::string("process://{id}/") + part},
                               {"name", std::string("process ") + part},
                               {"description", description},
                               {"mimeType", std::string_view(part) == "info" ? "application/json"
                                                                             : "text/plain"}});
  }
  return out;
}

std::optional<json::array> ProcessResources::read(mcp::SessionKey session, std::string_view uri,
                                                   std::string& error) {
  std::string id, part;
  if (!parse_uri(uri, id, part)) {
    error = "unknown resource '" + std::string(uri) +
            "'; process resources look like process://host-1/stdout (stdout, stderr, screen, info)";
    return std::nullopt;
  }
  auto p = ctx_.registry.find(id);
  if (!p || !visible(ctx_, *p, session)) {
    error = "unknown process id '" + id + "' in resource " + std::string(uri);
    return std::nullopt;
  }
  p->seen_by.insert(session_tag(session));
  std::string body;
  std::string mime = "text/plain";
  if (part == "info") {
    body = json::serialize(process_info(*p));
    mime = "application/json";
  } else if (part == "screen") {
    if (!p->terminal) {
      error = "process " + id + " has no terminal (it was started without tty: true)";
      return std::nullopt;
    }
    body = p->terminal->render_screen();
  } else {
    const auto& buffer = part == "stderr" ? p->stderr_buffer : p->stdout_buffer;
    auto slice = buffer.read(buffer.begin_offset(), buffer.retained());
    body = text::sanitize_utf8(process::strip_ansi(slice.data));
  }
  json::array contents;
  contents.push_back(json::object{{"uri", uri}, {"mimeType", mime}, {"text", body}});
  return contents;
}

bool ProcessResources::subscribe(mcp::SessionKey session, std::string_view uri,
                                 std::string& error) {
  std::string id, part;
  if (!parse_uri(uri, id, part)) {
    error = "unknown resource '" + std::string(uri) + "'";
    return false;
  }
  auto p = ctx_.registry.find(id);
  if (!p || !visible(ctx_, *p, session)) {
    error = "unknown process id '" + id + "' in resource " + std::string(uri);
    return false;
  }
  p->seen_by.insert(session_tag(session));
  subscriptions_[std::string(uri)].sessions.insert(session);
  return true;
}

void ProcessResources::unsubscribe(mcp::SessionKey session, std::string_view uri) {
  auto it = subscriptions_.find(std::string(uri));
  if (it == subscriptions_.end()) return;
  it->second.sessions.erase(session);
  if (it->second.sessions.empty()) {
    if (it->second.timer) it->second.timer->cancel();
    subscriptions_.erase(it);
  }
}

void ProcessResources::session_closed(mcp::SessionKey session) {
  for (auto it = subscriptions_.begin(); it != subscriptions_.end();) {
    it->second.sessions.erase(session);
    if (it->second.sessions.empty()) {
      if (it->second.timer) it->second.timer->cancel();
      it = subscriptions_.erase(it);
    } else {
      ++it;
    }
  }
}

void ProcessResources::changed(const process::Process& p, std::string_view part) {
  if (subscriptions_.empty()) return;
  std::string prefix = std::string(kScheme) + p.id + "/";
  auto touch = [&](std::string_view which) {
    std::string uri = prefix + std::string(which);
    auto it = subscriptions_.find(uri);
    if (it == subscriptions_.end()) return;
    Subscription& sub = it->second;
    auto now = std::chrono::steady_clock::now();
    if (now - sub.last_sent >= kMinInterval && !sub.pending) {
      send_update(uri);
      return;
    }
    if (sub.pending) return;
    sub.pending = true;
    if (!sub.timer) sub.timer = std::make_unique<boost::asio::steady_timer>(ctx_.io);
    sub.timer->expires_at(sub.last_sent + kMinInterval);
    sub.timer->async_wait([this, uri](boost::system::error_code ec) {
      if (!ec) send_update(uri);
    });
  };
  if (part == "exit") {
    for (const char* which : kParts) touch(which);
  } else if (part == "stderr") {
    touch("stderr");
  } else {
    touch("stdout");
    touch("screen");
  }
}

void ProcessResources::send_update(const std::string& uri) {
  auto it = subscriptions_.find(uri);
  if (it == subscriptions_.end()) return;
  it->second.pending = false;
  it->second.last_sent = std::chrono::steady_clock::now();
  for (const auto& session : it->second.sessions) {
    dispatcher_.notify(session, "notifications/resources/updated", json::object{{"uri", uri}});
  }
}

}  // namespace pmcp::tools
