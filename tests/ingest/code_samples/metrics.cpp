// metrics.cpp - request counters with a text exporter.
#include <map>
#include <sstream>
#include <string>

#include "metrics.h"

namespace telemetry {

namespace {
// Escapes label values for the text format.
std::string escape(const std::string& raw) {
    std::string out;
    for (char c : raw) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}
}  // namespace

/// A monotonically increasing count.
class Counter {
public:
    Counter() = default;
    explicit Counter(double start) : value_(start) {}

    void inc() { value_ += 1; }
    void inc(double by);

    double value() const { return value_; }

private:
    double value_ = 0;
};

void Counter::inc(double by) {
    if (by < 0) {
        return;
    }
    value_ += by;
}

/// Renders every counter in the registry.
std::string Registry::render() const {
    std::ostringstream out;
    for (const auto& [name, counter] : counters_) {
        out << name << "{job=\"" << escape(job_) << "\"} " << counter.value() << "\n";
    }
    return out.str();
}

Registry::Registry(std::string job) : job_(std::move(job)) {}

Registry::~Registry() {
    counters_.clear();
}

bool operator==(const Counter& a, const Counter& b) {
    return a.value() == b.value();
}

}  // namespace telemetry

int main() {
    telemetry::Registry registry("api");
    return registry.render().empty() ? 1 : 0;
}
