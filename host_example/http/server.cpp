#include "http/server.hpp"

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace iotstream_host::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {
// After an error response that closes the connection, the rest of what the client sends is
// read and dropped for at most this long (and this much) before the close: closing with
// unread data would reset the connection and could lose the response on the client's side.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr size_t kLingerBytes = 8 << 20;
// An idle event stream sends an SSE comment this often, so proxies and clients see it alive
// and a client that went away is noticed by the failing write.
constexpr auto kEventKeepAlive = std::chrono::seconds(15);
}  // namespace

std::string_view Request::header(std::string_view name) const {
    if (fields == nullptr) return {};
    auto value = (*static_cast<const bhttp::fields *>(fields))[beast::string_view(name.data(), name.size())];
    return {value.data(), value.size()};
}

Response error_response(int status, std::string_view message) {
    return {status, "application/json", nlohmann::json{{"error", message}}.dump() + "\n", {}, nullptr};
}

void Router::add(std::string method, std::string path, Handler handler) {
    routes_.push_back({std::move(method), std::move(path), std::move(handler)});
}

Response Router::dispatch(const Request &request) const {
    std::string allowed;
    for (const Route &route : routes_) {
        if (route.path != request.path) continue;
        if (route.method == request.method) {
            try {
                return route.handler(request);
            } catch (const std::exception &e) {
                return error_response(500, std::string("internal error: ") + e.what());
            }
        }
        allowed += (allowed.empty() ? "" : ", ") + route.method;
    }
    if (allowed.empty()) return error_response(404, "no route for " + std::string(request.path));
    Response response = error_response(405, std::string(request.method) + " is not allowed here; use " + allowed);
    response.headers.emplace_back("Allow", allowed);
    return response;
}

struct Server::Impl {
    ServerLimits limits;
    Router router;
    ServerStats stats;
    std::vector<std::thread> threads;
    std::atomic<bool> stopped{false};
    uint16_t port = 0;
    // One io_context per I/O thread, each connection on one of them (round robin): a
    // connection's handlers never change threads, so no strand and no wakeup of another thread
    // per request (with one shared context, context switches and futex wakeups were a sixth of
    // the gateway's time at single-reading requests). Declared last: destroying a context
    // destroys the sessions it still holds, which count themselves out of `stats`.
    std::vector<std::unique_ptr<net::io_context>> contexts;
    size_t next_context = 0;  // the acceptor's thread only
    tcp::acceptor acceptor;
    net::steady_timer accept_retry;

    static std::vector<std::unique_ptr<net::io_context>> make_contexts(int threads) {
        std::vector<std::unique_ptr<net::io_context>> out;
        for (int i = 0; i < std::max(1, threads); ++i) out.push_back(std::make_unique<net::io_context>(1));
        return out;
    }
    Impl(const ServerLimits &l, Router r)
        : limits(l),
          router(std::move(r)),
          contexts(make_contexts(l.threads)),
          acceptor(*contexts[0]),
          accept_retry(*contexts[0]) {}
    void accept();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, Server::Impl &server) : stream_(std::move(socket)), server_(server) {}
    ~Session() { server_.stats.connections_open.fetch_sub(1, std::memory_order_relaxed); }

    void start() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
    }
    // Over max_connections: one 503, then close.
    void refuse() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
            Response response = error_response(503, "too many connections; retry later");
            response.headers.emplace_back("Retry-After", "1");
            self->respond(std::move(response), 11, false);
        });
    }

private:
    void read_header() {
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(server_.limits.max_header_bytes));
        parser_->body_limit(server_.limits.max_body_bytes);
        // One deadline for the whole request: a client trickling bytes cannot hold the
        // connection longer than read_timeout (Beast's timer spans all reads until reset).
        stream_.expires_after(server_.limits.read_timeout);
        bhttp::async_read_header(stream_, buffer_, *parser_,
                                 [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
    }

    void on_header(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        const auto &request = parser_->get();
        if (beast::iequals(request[bhttp::field::expect], "100-continue") && !parser_->is_done()) {
            continue_.emplace(bhttp::status::continue_, request.version());
            bhttp::async_write(stream_, *continue_, [self = shared_from_this()](beast::error_code write_ec, size_t) {
                if (write_ec) return self->close();
                self->read_body();
            });
            return;
        }
        read_body();
    }

    void read_body() {
        bhttp::async_read(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
    }

    void on_read_error(beast::error_code ec) {
        ServerStats &stats = server_.stats;
        if (ec == beast::error::timeout) {
            stats.timeouts.fetch_add(1, std::memory_order_relaxed);
            return close();
        }
        if (ec == bhttp::error::body_limit) {
            stats.bodies_too_large.fetch_add(1, std::memory_order_relaxed);
            return respond(error_response(413, "request body is over " + std::to_string(server_.limits.max_body_bytes) +
                                                   " bytes"),
                           version(), false);
        }
        if (ec == bhttp::error::header_limit) {
            stats.malformed.fetch_add(1, std::memory_order_relaxed);
            return respond(error_response(431, "request header is over " +
                                                   std::to_string(server_.limits.max_header_bytes) + " bytes"),
                           version(), false);
        }
        const bool http_error = ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category();
        if (http_error && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
            stats.malformed.fetch_add(1, std::memory_order_relaxed);
            return respond(error_response(400, "malformed request: " + ec.message()), version(), false);
        }
        close();  // the client closed, or the socket failed
    }

    unsigned version() const { return parser_ && parser_->is_header_done() ? parser_->get().version() : 11; }

    void on_request(beast::error_code ec) {
        if (ec) return on_read_error(ec);
        server_.stats.requests.fetch_add(1, std::memory_order_relaxed);
        const auto &message = parser_->get();
        Request request;
        request.method = {message.method_string().data(), message.method_string().size()};
        std::string_view target(message.target().data(), message.target().size());
        const size_t question = target.find('?');
        request.path = target.substr(0, question);
        if (question != std::string_view::npos) request.query = target.substr(question + 1);
        request.body = message.body();
        request.fields = static_cast<const bhttp::fields *>(&message);
        respond(server_.router.dispatch(request), message.version(), message.keep_alive());
    }

    void respond(Response response, unsigned version, bool keep_alive) {
        if (response.events) return stream_events(std::move(response), version);
        response_.emplace(static_cast<bhttp::status>(response.status), version);
        response_->set(bhttp::field::server, "iotstream");
        response_->set(bhttp::field::content_type, response.content_type);
        for (const auto &[name, value] : response.headers) response_->set(name, value);
        response_->body() = std::move(response.body);
        response_->keep_alive(keep_alive && !server_.stopped.load(std::memory_order_relaxed));
        response_->prepare_payload();
        stream_.expires_after(server_.limits.read_timeout);  // a client that does not read is slow too
        bhttp::async_write(stream_, *response_, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec) return self->close();
            if (!self->response_->keep_alive()) return self->linger();
            self->read_header();
        });
    }

    // An event stream: the header, then one chunk per non-empty `next` (Beast's chunked body).
    void stream_events(Response response, unsigned version) {
        events_ = std::move(response.events);
        event_cursor_ = events_->start;
        event_header_.emplace(static_cast<bhttp::status>(response.status), version);
        event_header_->set(bhttp::field::server, "iotstream");
        event_header_->set(bhttp::field::content_type, "text/event-stream");
        event_header_->set(bhttp::field::cache_control, "no-cache");
        for (const auto &[name, value] : response.headers) event_header_->set(name, value);
        event_header_->chunked(true);
        event_serializer_.emplace(*event_header_);
        stream_.expires_after(server_.limits.read_timeout);
        bhttp::async_write_header(stream_, *event_serializer_, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec) return self->close();
            self->last_event_write_ = std::chrono::steady_clock::now();
            self->wait_for_events();
        });
    }

    void wait_for_events() {
        if (server_.stopped.load(std::memory_order_relaxed)) return close();
        if (!event_timer_) event_timer_.emplace(stream_.get_executor());
        event_timer_->expires_after(events_->interval);
        event_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec) return self->close();
            self->send_events();
        });
    }

    void send_events() {
        event_chunk_ = events_->next(event_cursor_);
        const auto now = std::chrono::steady_clock::now();
        if (event_chunk_.empty()) {
            if (now - last_event_write_ < kEventKeepAlive) return wait_for_events();
            event_chunk_ = ": keep-alive\n\n";
        }
        last_event_write_ = now;
        stream_.expires_after(server_.limits.read_timeout);  // a client that stops reading is dropped
        net::async_write(stream_, bhttp::make_chunk(net::buffer(event_chunk_)),
                         [self = shared_from_this()](beast::error_code ec, size_t) {
                             if (ec) return self->close();
                             self->wait_for_events();
                         });
    }

    void linger() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream_.expires_after(kLingerTime);
        drain();
    }

    void drain() {
        stream_.async_read_some(net::buffer(drain_buffer_), [self = shared_from_this()](beast::error_code ec, size_t n) {
            self->drained_ += n;
            if (ec || self->drained_ > kLingerBytes) return self->close();
            self->drain();
        });
    }

    void close() {
        beast::error_code ignored;
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    Server::Impl &server_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    std::optional<bhttp::response<bhttp::empty_body>> continue_;
    std::optional<bhttp::response<bhttp::string_body>> response_;
    char drain_buffer_[16384];
    size_t drained_ = 0;
    // An event stream's state (stream_events).
    std::shared_ptr<EventStream> events_;
    uint64_t event_cursor_ = 0;
    std::optional<bhttp::response<bhttp::empty_body>> event_header_;
    std::optional<bhttp::response_serializer<bhttp::empty_body>> event_serializer_;
    std::optional<net::steady_timer> event_timer_;
    std::string event_chunk_;
    std::chrono::steady_clock::time_point last_event_write_{};
};

}  // namespace

void Server::Impl::accept() {
    net::io_context &context = *contexts[next_context++ % contexts.size()];
    acceptor.async_accept(context, [this](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || stopped.load()) return;
        if (ec) {
            // Out of descriptors or similar: try again shortly instead of spinning.
            accept_retry.expires_after(std::chrono::milliseconds(50));
            accept_retry.async_wait([this](beast::error_code wait_ec) {
                if (!wait_ec) accept();
            });
            return;
        }
        const bool over = stats.connections_open.fetch_add(1, std::memory_order_relaxed) >= limits.max_connections;
        stats.connections_accepted.fetch_add(1, std::memory_order_relaxed);
        auto session = std::make_shared<Session>(std::move(socket), *this);
        if (over) {
            stats.connections_refused.fetch_add(1, std::memory_order_relaxed);
            session->refuse();
        } else {
            session->start();
        }
        accept();
    });
}

std::pair<std::string, uint16_t> split_listen(const std::string &listen, const std::string &flag) {
    const size_t colon = listen.rfind(':');
    const std::string port = colon == std::string::npos ? "" : listen.substr(colon + 1);
    char *end = nullptr;
    const long value = std::strtol(port.c_str(), &end, 10);
    if (port.empty() || *end != '\0' || value < 0 || value > 65535)
        throw std::runtime_error(flag + " needs HOST:PORT, got '" + listen + "'");
    return {listen.substr(0, colon), static_cast<uint16_t>(value)};
}

Server::Server(const std::string &host, uint16_t port, const ServerLimits &limits, Router router)
    : impl_(std::make_shared<Impl>(limits, std::move(router))) {
    beast::error_code ec;
    const auto address = net::ip::make_address(host, ec);
    if (ec) throw std::runtime_error("cannot listen on '" + host + "': not an IP address");
    const tcp::endpoint endpoint(address, port);
    auto fail = [&](const char *what) {
        if (ec)
            throw std::runtime_error(std::string("cannot listen on ") + host + ":" + std::to_string(port) + ": " +
                                     what + ": " + ec.message());
    };
    impl_->acceptor.open(endpoint.protocol(), ec);
    fail("open");
    impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    fail("SO_REUSEADDR");
    impl_->acceptor.bind(endpoint, ec);
    fail("bind");
    impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
    fail("listen");
    impl_->port = impl_->acceptor.local_endpoint().port();
}

Server::~Server() { stop(); }

uint16_t Server::port() const { return impl_->port; }

void Server::start() {
    impl_->accept();
    for (auto &context : impl_->contexts)
        impl_->threads.emplace_back([context = context.get()] {
            // Idle contexts (no connection yet) must not return from run().
            auto work = net::make_work_guard(*context);
            context->run();
        });
}

void Server::stop() {
    if (impl_->stopped.exchange(true)) return;
    for (auto &context : impl_->contexts) context->stop();
    for (auto &thread : impl_->threads) thread.join();
    impl_->threads.clear();
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
}

const ServerStats &Server::stats() const { return impl_->stats; }

}  // namespace iotstream_host::http
