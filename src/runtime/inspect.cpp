#include "hymoe/inspect.hpp"
#include "hymoe/error.hpp"
namespace hymoe {
ModelInfo inspect_model(const std::string& path) { throw Error(path + ": inspect not built yet"); }
}  // namespace hymoe
