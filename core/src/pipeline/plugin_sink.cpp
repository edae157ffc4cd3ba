// A sink plugin as an OutputSink: batching on the pipeline thread, writes on the sink's thread, acks from any.
#include "pipeline/plugin_sink.hpp"

#include "common/log.hpp"
#include "pipeline/commit_epochs.hpp"

namespace iotstream {

PluginSink::PluginSink(std::unique_ptr<PluginInstance> instance, std::set<std::string, std::less<>> outputs,
                       size_t max_batch, size_t max_queued)
    : instance_(std::move(instance)), outputs_(std::move(outputs)), max_batch_(max_batch), max_queued_(max_queued) {}

void PluginSink::start() { thread_ = std::thread([this] { run(); }); }

PluginSink::~PluginSink() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
    instance_.reset();  // destroy(): the plugin acknowledges what it still holds before it returns
}

void PluginSink::emit(std::string_view output, std::string_view key, std::string_view value, int64_t event_time_ms,
                      CommitEpoch *epoch) {
    if (open_ && open_->epoch != epoch) hand_over();
    if (!open_) {
        open_ = std::make_unique<Batch>();
        open_->token = next_token_++;
        open_->epoch = epoch;
        epoch->outstanding.fetch_add(1, std::memory_order_relaxed);  // until the sink acknowledges
    }
    open_->outputs.emplace_back(output);
    open_->keys.emplace_back(key);
    open_->values.emplace_back(value);
    open_->event_times.push_back(event_time_ms);
    if (open_->values.size() >= max_batch_) hand_over();
}

void PluginSink::hand_over() {
    if (!open_) return;
    {
        std::lock_guard lock(mutex_);
        unacked_.emplace(open_->token, Unacked{open_->epoch, open_->values.size()});
        ++batches_;
        records_ += open_->values.size();
        queue_.push_back(std::move(open_));
        peak_unacked_ = std::max(peak_unacked_, unacked_.size());
    }
    changed_.notify_all();
}

int PluginSink::ack(uint64_t token, int status, const char *detail) {
    CommitEpoch *epoch = nullptr;
    {
        std::lock_guard lock(mutex_);
        auto it = unacked_.find(token);
        if (it == unacked_.end()) {
            logger("sink")->error("sink '{}' acknowledged unknown or already acknowledged batch {}", name(), token);
            return 1;
        }
        epoch = it->second.epoch;
        const size_t records = it->second.records;
        unacked_.erase(it);
        if (status == IOTS_SINK_OK) {
            ++acked_;
            acked_records_ += records;
        } else {
            ++failed_;
            failed_records_ += records;
            if (failure_.empty())
                failure_ = "sink '" + std::string(name()) + "' could not write batch " + std::to_string(token) +
                           ": " + (detail && *detail ? detail : "no reason given");
            epoch->delivery_failed.store(true);  // nothing is committed past this epoch
        }
    }
    epoch->outstanding.fetch_sub(1, std::memory_order_acq_rel);
    changed_.notify_all();
    return 0;
}

std::string PluginSink::failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
}

bool PluginSink::full() const {
    std::lock_guard lock(mutex_);
    return unacked_.size() >= max_queued_;
}

bool PluginSink::wait_for_room(Deadline deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return unacked_.size() < max_queued_ || !failure_.empty(); });
}

bool PluginSink::wait_acknowledged(Deadline deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return unacked_.empty() || !failure_.empty(); }) &&
           unacked_.empty();
}

Json PluginSink::stats() const {
    std::lock_guard lock(mutex_);
    return {{"plugin", std::string(name())}, {"batches", batches_}, {"records", records_},
            {"acknowledged", acked_}, {"failed", failed_},
            {"acknowledged_records", acked_records_}, {"failed_records", failed_records_}, {"queued", queue_.size()},
            {"max_queued_batches", max_queued_}, {"peak_unacknowledged", peak_unacked_},
            {"unacknowledged", unacked_.size()}, {"error", failure_}};
}

void PluginSink::run() {
    for (;;) {
        std::unique_ptr<Batch> batch;
        {
            std::unique_lock lock(mutex_);
            changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (stopping_) return;
            batch = std::move(queue_.front());
            queue_.pop_front();
        }
        const size_t n = batch->values.size();
        std::vector<iots_str_t> outputs(n), keys(n), values(n);
        for (size_t i = 0; i < n; ++i) {
            outputs[i] = {batch->outputs[i].data(), batch->outputs[i].size()};
            keys[i] = {batch->keys[i].data(), batch->keys[i].size()};
            values[i] = {batch->values[i].data(), batch->values[i].size()};
        }
        iots_sink_batch_t view{};
        view.struct_size = sizeof view;
        view.count = static_cast<uint32_t>(n);
        view.token = batch->token;
        view.outputs = outputs.data();
        view.keys = keys.data();
        view.values = values.data();
        view.event_time_ms = batch->event_times.data();
        std::string error;
        try {
            error = instance_->write_sink(view);
        } catch (const std::exception &e) {
            error = e.what();
        }
        if (!error.empty()) (void)ack(batch->token, IOTS_SINK_FAILED, error.c_str());
    }
}

}  // namespace iotstream
