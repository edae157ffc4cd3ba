// A small HTTP/1.1 server on Boost.Beast + Asio for iotstream-host: a route table of
// (method, path) -> handler, keep-alive, a bounded number of connections, bounded header and
// body sizes, and a deadline per request against slow clients (slow-loris). The gateway's
// POST /v1/readings is one route; /metrics and a dashboard can be others on the same server.
// Handlers run on the server's I/O threads and must not block.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iotstream_host::http {

struct Request {
    std::string_view method;  // "GET", "POST", ...
    std::string_view path;    // the target without its query
    std::string_view query;   // after '?', "" when none
    std::string_view body;
    // A header's value ("" when absent); names are case-insensitive.
    std::string_view header(std::string_view name) const;

    const void *fields = nullptr;  // the parsed header fields (server.cpp)
};

// A server-sent event stream (text/event-stream): after the response header the server
// calls `next` every `interval` on its I/O thread and sends what it returns (complete SSE
// frames, "" for nothing new) as one chunk, until the client goes or the server stops. `next`
// must not block; `cursor` is the stream's own position (starts at `start`).
struct EventStream {
    std::function<std::string(uint64_t &cursor)> next;
    uint64_t start = 0;
    std::chrono::milliseconds interval{250};
};

struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
    std::shared_ptr<EventStream> events;  // set: an SSE stream instead of `body`
};

// "HOST:PORT" split at its last colon; throws std::runtime_error naming `flag`.
std::pair<std::string, uint16_t> split_listen(const std::string &listen, const std::string &flag);

// A JSON body {"error": message} with `status`.
Response error_response(int status, std::string_view message);

using Handler = std::function<Response(const Request &)>;

class Router {
public:
    void add(std::string method, std::string path, Handler handler);
    // The route's answer; 404 for an unknown path, 405 (with Allow) for a known path's other
    // methods, 500 if the handler throws.
    Response dispatch(const Request &request) const;

private:
    struct Route {
        std::string method, path;
        Handler handler;
    };
    std::vector<Route> routes_;
};

struct ServerLimits {
    size_t max_connections = 1024;  // beyond this a new connection gets 503 and is closed
    size_t max_header_bytes = 16 * 1024;
    size_t max_body_bytes = 1 << 20;  // larger bodies get 413
    // A whole request (headers and body) must arrive within this of the connection opening
    // or of the previous response; an idle keep-alive connection is closed after it too.
    std::chrono::milliseconds read_timeout{10000};
    int threads = 2;
};

struct ServerStats {
    std::atomic<uint64_t> connections_accepted{0};
    std::atomic<uint64_t> connections_refused{0};  // over max_connections
    std::atomic<uint64_t> connections_open{0};
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> timeouts{0};         // connections closed by read_timeout
    std::atomic<uint64_t> malformed{0};        // unparsable requests (400, 431)
    std::atomic<uint64_t> bodies_too_large{0};  // 413 before the route ran
};

class Server {
public:
    // Binds host:port (port 0: any free port); throws std::runtime_error. `router` is copied.
    Server(const std::string &host, uint16_t port, const ServerLimits &limits, Router router);
    ~Server();  // stop()
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    uint16_t port() const;
    void start();  // starts the I/O threads
    void stop();   // closes the listener and every connection, joins the threads; idempotent
    const ServerStats &stats() const;

    struct Impl;  // server.cpp (its sessions reach it)

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace iotstream_host::http
