// Build glue for compiling nvdiffrast's framework-independent sources (nvdiffrast/common/) into
// jaxface's XLA FFI library, without PyTorch or TensorFlow.
//
// nvdiffrast's framework.h defines its error macros only for those two frameworks; this header
// is force-included (nvcc -include) before every nvdiffrast source and supplies them: a failed
// check throws std::runtime_error, which jaxface's FFI handlers catch and return to XLA as an
// error with the message. RasterImpl.cpp's LOG(INFO) line ("internal buffers grown") is printed
// to stderr only when JAXFACE_NVDR_VERBOSE is set. <cstring>: RasterImpl.cpp uses memset/memcpy
// and relied on the framework headers to include it.
#pragma once

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#define NVDR_CTX_ARGS int _nvdr_ctx_dummy
#define NVDR_CTX_PARAMS 0

#define NVDR_CHECK(COND, ERR)                                                       \
  do {                                                                              \
    if (!(COND)) throw std::runtime_error(std::string("nvdiffrast: ") + (ERR));     \
  } while (0)

#define NVDR_CHECK_CUDA_ERROR(CUDA_CALL)                                            \
  do {                                                                              \
    cudaError_t nvdr_err_ = (CUDA_CALL);                                            \
    if (nvdr_err_ != cudaSuccess)                                                   \
      throw std::runtime_error(std::string("nvdiffrast: CUDA error ") +             \
                               cudaGetErrorString(nvdr_err_) + " in " #CUDA_CALL);  \
  } while (0)

namespace jaxface_nvdr_glue {

// Collects one LOG(...) line and prints it on destruction when verbose.
class LogLine {
 public:
  ~LogLine() {
    if (std::getenv("JAXFACE_NVDR_VERBOSE") != nullptr)
      std::cerr << "[nvdiffrast] " << stream_.str() << std::endl;
  }
  template <typename T>
  LogLine& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

}  // namespace jaxface_nvdr_glue

#define LOG(severity) ::jaxface_nvdr_glue::LogLine()
