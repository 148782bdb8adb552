// XLA FFI handlers that run nvdiffrast's CUDA kernels (rasterize, interpolate, texture,
// antialias; forward and backward) on the stream XLA hands each call.
//
// Layouts are nvdiffrast's "instance mode": pos (B, V, 4), tri (T, 3) int32, rast (B, H, W, 4),
// attr (A, V, C) and tex (A, Ht, Wt, C) with A = 1 (shared) or B, color (B, H, W, C). The Python
// side (jaxface/render/nvdr_ffi/ops.py) wraps them in custom VJPs and a vmap rule.
//
// The kernels come from the installed diffrp-nvdiffrast package and are compiled next to this
// file by `jaxface build-nvdiffrast`; nvdiffrast's headers are included from that package.
// A failed check (here or in nvdiffrast's host code, see third_party/nvdiffrast/nvdr_glue.h)
// throws; each handler turns the exception into an XLA error carrying the message.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "nvdr_glue.h"
#include "xla/ffi/api/ffi.h"

#include "common/antialias.h"
#include "common/common.h"
#include "common/cudaraster/CudaRaster.hpp"
#include "common/cudaraster/impl/Constants.hpp"
#include "common/interpolate.h"
#include "common/rasterize.h"
#include "common/texture.h"

namespace ffi = xla::ffi;

// nvdiffrast's kernels, defined in its .cu files; declared as host functions so their stubs can
// be handed to cudaLaunchKernel (the way nvdiffrast's own framework bindings launch them).
void RasterizeCudaFwdShaderKernel(const RasterizeCudaFwdShaderParams p);
void RasterizeGradKernel(const RasterizeGradParams p);
void RasterizeGradKernelDb(const RasterizeGradParams p);
void InterpolateFwdKernel(const InterpolateKernelParams p);
void InterpolateFwdKernelDa(const InterpolateKernelParams p);
void InterpolateGradKernel(const InterpolateKernelParams p);
void InterpolateGradKernelDa(const InterpolateKernelParams p);
void TextureFwdKernelNearest1(const TextureKernelParams p);
void TextureFwdKernelNearest2(const TextureKernelParams p);
void TextureFwdKernelNearest4(const TextureKernelParams p);
void TextureFwdKernelLinear1(const TextureKernelParams p);
void TextureFwdKernelLinear2(const TextureKernelParams p);
void TextureFwdKernelLinear4(const TextureKernelParams p);
void TextureGradKernelNearest(const TextureKernelParams p);
void TextureGradKernelLinear(const TextureKernelParams p);
void AntialiasFwdMeshKernel(const AntialiasKernelParams p);
void AntialiasFwdDiscontinuityKernel(const AntialiasKernelParams p);
void AntialiasFwdAnalysisKernel(const AntialiasKernelParams p);
void AntialiasGradKernel(const AntialiasKernelParams p);

namespace {

using Dims = ffi::Span<const int64_t>;

void Require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument(message);
}

std::string Shape(Dims dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

// Runs a handler body, turning exceptions into XLA errors.
template <typename Body>
ffi::Error Guarded(const char* op, Body&& body) {
  try {
    body();
    return ffi::Error::Success();
  } catch (const std::invalid_argument& e) {
    return ffi::Error::InvalidArgument(std::string("jaxface nvdiffrast ") + op + ": " + e.what());
  } catch (const std::exception& e) {
    return ffi::Error::Internal(std::string("jaxface nvdiffrast ") + op + ": " + e.what());
  }
}

template <typename Params>
void Launch(void* kernel, dim3 grid, dim3 block, Params& params, cudaStream_t stream) {
  void* args[] = {&params};
  NVDR_CHECK_CUDA_ERROR(cudaLaunchKernel(kernel, grid, block, args, 0, stream));
}

// Handlers run on XLA's threads; make the CUDA runtime's current device the call's device so
// launches, allocations and occupancy queries go to it.
void UseDevice(int32_t device) { NVDR_CHECK_CUDA_ERROR(cudaSetDevice(device)); }

int RoundUp(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

// The rasterizer's persistent state for one device: CudaRaster grows its buffers with
// cudaMalloc and reads counters back to the host, so each device has one context, used by one
// call at a time. `colour_read` is recorded after the shader kernel has read the colour buffer;
// the next call (possibly on another stream) waits for it before drawing over that buffer.
struct RasterContext {
  std::mutex mutex;
  CR::CudaRaster* raster = nullptr;
  cudaEvent_t colour_read = nullptr;
};

RasterContext& ContextFor(int device) {
  static std::mutex registry_mutex;
  // Contexts live as long as the process: destroying CudaRaster during interpreter exit would
  // free device memory after the CUDA runtime may already be shut down.
  static auto* contexts = new std::map<int, RasterContext*>();
  std::lock_guard<std::mutex> lock(registry_mutex);
  RasterContext*& context = (*contexts)[device];
  if (context == nullptr) context = new RasterContext();
  return *context;
}

void CheckPosTri(Dims pos, Dims tri) {
  Require(pos.size() == 3 && pos[0] > 0 && pos[1] > 0 && pos[2] == 4,
          "pos must have shape (B, V, 4), got " + Shape(pos));
  Require(tri.size() == 2 && tri[0] > 0 && tri[1] == 3,
          "tri must have shape (T, 3), got " + Shape(tri));
}

void CheckImage(Dims image, int64_t batch, int64_t height, int64_t width, int64_t channels,
                const char* name) {
  Require(image.size() == 4 && image[0] == batch && image[1] == height && image[2] == width &&
              (channels < 0 || image[3] == channels),
          std::string(name) + " must have shape (" + std::to_string(batch) + ", " +
              std::to_string(height) + ", " + std::to_string(width) + ", " +
              (channels < 0 ? std::string("C") : std::to_string(channels)) + "), got " +
              Shape(image));
  // nvdiffrast indexes pixels and channels with 32-bit ints.
  Require(batch * height * width * std::max<int64_t>(image[3], 1) < (int64_t{1} << 31),
          std::string(name) + " has 2^31 or more values: split the batch");
}

// ---------------------------------------------------------------------------------------------
// rasterize

ffi::Error RasterizeFwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> pos,
                        ffi::Buffer<ffi::S32> tri, ffi::ResultBuffer<ffi::F32> rast,
                        ffi::ResultBuffer<ffi::F32> rast_db) {
  return Guarded("rasterize", [&] {
    CheckPosTri(pos.dimensions(), tri.dimensions());
    Dims out = rast->dimensions();
    const int depth = pos.dimensions()[0];
    Require(out.size() == 4 && out[0] == depth && out[1] > 0 && out[2] > 0 && out[3] == 4,
            "rast must have shape (B, H, W, 4), got " + Shape(out));
    CheckImage(rast_db->dimensions(), depth, out[1], out[2], 4, "rast_db");
    const int height_out = out[1], width_out = out[2];
    const int num_vertices = pos.dimensions()[1], num_triangles = tri.dimensions()[0];

    UseDevice(device);
    RasterContext& context = ContextFor(device);
    std::lock_guard<std::mutex> lock(context.mutex);
    if (context.raster == nullptr) {
      context.raster = new CR::CudaRaster();
      NVDR_CHECK_CUDA_ERROR(cudaEventCreateWithFlags(&context.colour_read,
                                                     cudaEventDisableTiming));
    }
    NVDR_CHECK_CUDA_ERROR(cudaStreamWaitEvent(stream, context.colour_read, 0));
    CR::CudaRaster& raster = *context.raster;

    // CudaRaster draws all images of the batch with the same triangles (instance mode) into
    // buffers padded to whole tiles, one viewport-sized tile at a time.
    const int height = RoundUp(height_out, CR_TILE_SIZE);
    const int width = RoundUp(width_out, CR_TILE_SIZE);
    raster.setVertexBuffer(const_cast<float*>(pos.typed_data()), num_vertices);
    raster.setIndexBuffer(const_cast<int32_t*>(tri.typed_data()), num_triangles);
    raster.setBufferSize(width_out, height_out, depth);
    raster.setRenderModeFlags(0);  // no culling: either winding is drawn
    const int tiles_x = (width + CR_MAXVIEWPORT_SIZE - 1) / CR_MAXVIEWPORT_SIZE;
    const int tiles_y = (height + CR_MAXVIEWPORT_SIZE - 1) / CR_MAXVIEWPORT_SIZE;
    const int tile_w = RoundUp((width + tiles_x - 1) / tiles_x, CR_TILE_SIZE);
    const int tile_h = RoundUp((height + tiles_y - 1) / tiles_y, CR_TILE_SIZE);
    for (int ty = 0; ty < tiles_y; ++ty) {
      for (int tx = 0; tx < tiles_x; ++tx) {
        const int x0 = tx * tile_w, y0 = ty * tile_h;
        raster.setViewport(std::min(tile_w, width_out - x0), std::min(tile_h, height_out - y0),
                           x0, y0);
        raster.deferredClear(0u);
        if (!raster.drawTriangles(nullptr, false, stream))
          throw std::runtime_error("CudaRaster's subtriangle count overflowed");
      }
    }

    RasterizeCudaFwdShaderParams p = {};
    p.pos = pos.typed_data();
    p.tri = tri.typed_data();
    p.in_idx = static_cast<const int*>(raster.getColorBuffer());
    p.out = rast->typed_data();
    p.out_db = rast_db->typed_data();
    p.numTriangles = num_triangles;
    p.numVertices = num_vertices;
    p.width_in = width;
    p.height_in = height;
    p.width_out = width_out;
    p.height_out = height_out;
    p.depth = depth;
    p.instance_mode = 1;
    // Pixel centre (x + 0.5) / W * 2 - 1 in clip space.
    p.xs = 2.f / width_out;
    p.xo = 1.f / width_out - 1.f;
    p.ys = 2.f / height_out;
    p.yo = 1.f / height_out - 1.f;
    dim3 block = getLaunchBlockSize(RAST_CUDA_FWD_SHADER_KERNEL_BLOCK_WIDTH,
                                    RAST_CUDA_FWD_SHADER_KERNEL_BLOCK_HEIGHT, width_out,
                                    height_out);
    Launch((void*)RasterizeCudaFwdShaderKernel, getLaunchGridSize(block, width_out, height_out,
                                                                  depth),
           block, p, stream);
    NVDR_CHECK_CUDA_ERROR(cudaEventRecord(context.colour_read, stream));
  });
}

ffi::Error RasterizeBwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> pos,
                        ffi::Buffer<ffi::S32> tri,
                        ffi::Buffer<ffi::F32> rast, ffi::Buffer<ffi::F32> d_rast,
                        ffi::Buffer<ffi::F32> d_rast_db, ffi::ResultBuffer<ffi::F32> d_pos,
                        bool grad_db) {
  return Guarded("rasterize backward", [&] {
    UseDevice(device);
    CheckPosTri(pos.dimensions(), tri.dimensions());
    Dims r = rast.dimensions();
    const int depth = pos.dimensions()[0];
    CheckImage(r, depth, r.size() == 4 ? r[1] : -1, r.size() == 4 ? r[2] : -1, 4, "rast");
    CheckImage(d_rast.dimensions(), depth, r[1], r[2], 4, "the rast cotangent");
    if (grad_db)
      CheckImage(d_rast_db.dimensions(), depth, r[1], r[2], 4, "the rast_db cotangent");
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(d_pos->typed_data(), 0,
                                          d_pos->element_count() * sizeof(float), stream));
    RasterizeGradParams p = {};
    p.pos = pos.typed_data();
    p.tri = tri.typed_data();
    p.out = rast.typed_data();
    p.dy = d_rast.typed_data();
    p.ddb = grad_db ? d_rast_db.typed_data() : nullptr;
    p.grad = d_pos->typed_data();
    p.numTriangles = tri.dimensions()[0];
    p.numVertices = pos.dimensions()[1];
    p.depth = depth;
    p.height = r[1];
    p.width = r[2];
    p.instance_mode = 1;
    p.xs = 2.f / p.width;
    p.xo = 1.f / p.width - 1.f;
    p.ys = 2.f / p.height;
    p.yo = 1.f / p.height - 1.f;
    dim3 block = getLaunchBlockSize(RAST_GRAD_MAX_KERNEL_BLOCK_WIDTH,
                                    RAST_GRAD_MAX_KERNEL_BLOCK_HEIGHT, p.width, p.height);
    Launch(grad_db ? (void*)RasterizeGradKernelDb : (void*)RasterizeGradKernel,
           getLaunchGridSize(block, p.width, p.height, depth), block, p, stream);
  });
}

// ---------------------------------------------------------------------------------------------
// interpolate

// Fills the shape fields shared by the forward and backward passes; returns the batch size.
int InterpolateShapes(InterpolateKernelParams& p, Dims attr, Dims rast, Dims tri, Dims rast_db,
                      bool with_da) {
  Require(tri.size() == 2 && tri[0] > 0 && tri[1] == 3,
          "tri must have shape (T, 3), got " + Shape(tri));
  Require(rast.size() == 4 && rast[0] > 0 && rast[3] == 4,
          "rast must have shape (B, H, W, 4), got " + Shape(rast));
  Require(attr.size() == 3 && (attr[0] == 1 || attr[0] == rast[0]) && attr[1] > 0 && attr[2] > 0,
          "attr must have shape (1 or B, V, C) with B = " + std::to_string(rast[0]) + ", got " +
              Shape(attr));
  if (with_da) {
    CheckImage(rast_db, rast[0], rast[1], rast[2], 4, "rast_db");
    Require(attr[2] <= 0x7fffffff, "too many attributes");
  }
  p.instance_mode = 1;
  p.attrBC = attr[0] == 1 ? 1 : 0;
  p.numVertices = attr[1];
  p.numAttr = attr[2];
  p.numTriangles = tri[0];
  p.depth = rast[0];
  p.height = rast[1];
  p.width = rast[2];
  // Screen derivatives of every attribute, or none (diff_attrs="all" in nvdiffrast's terms).
  p.diff_attrs_all = with_da ? 1 : 0;
  p.numDiffAttr = with_da ? p.numAttr : 0;
  return p.depth;
}

ffi::Error InterpolateFwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> attr,
                          ffi::Buffer<ffi::F32> rast, ffi::Buffer<ffi::S32> tri,
                          ffi::Buffer<ffi::F32> rast_db, ffi::ResultBuffer<ffi::F32> out,
                          ffi::ResultBuffer<ffi::F32> out_da, bool with_da) {
  return Guarded("interpolate", [&] {
    UseDevice(device);
    InterpolateKernelParams p = {};
    const int depth = InterpolateShapes(p, attr.dimensions(), rast.dimensions(),
                                        tri.dimensions(), rast_db.dimensions(), with_da);
    CheckImage(out->dimensions(), depth, p.height, p.width, p.numAttr, "out");
    if (with_da)
      CheckImage(out_da->dimensions(), depth, p.height, p.width, 2 * p.numAttr, "out_da");
    p.attr = attr.typed_data();
    p.rast = rast.typed_data();
    p.tri = tri.typed_data();
    p.rastDB = with_da ? rast_db.typed_data() : nullptr;
    p.out = out->typed_data();
    p.outDA = with_da ? out_da->typed_data() : nullptr;
    dim3 block = getLaunchBlockSize(IP_FWD_MAX_KERNEL_BLOCK_WIDTH, IP_FWD_MAX_KERNEL_BLOCK_HEIGHT,
                                    p.width, p.height);
    Launch(with_da ? (void*)InterpolateFwdKernelDa : (void*)InterpolateFwdKernel,
           getLaunchGridSize(block, p.width, p.height, depth), block, p, stream);
  });
}

ffi::Error InterpolateBwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> attr,
                          ffi::Buffer<ffi::F32> rast, ffi::Buffer<ffi::S32> tri,
                          ffi::Buffer<ffi::F32> rast_db, ffi::Buffer<ffi::F32> d_out,
                          ffi::Buffer<ffi::F32> d_out_da, ffi::ResultBuffer<ffi::F32> d_attr,
                          ffi::ResultBuffer<ffi::F32> d_rast, ffi::ResultBuffer<ffi::F32> d_rast_db,
                          bool with_da) {
  return Guarded("interpolate backward", [&] {
    UseDevice(device);
    InterpolateKernelParams p = {};
    const int depth = InterpolateShapes(p, attr.dimensions(), rast.dimensions(),
                                        tri.dimensions(), rast_db.dimensions(), with_da);
    CheckImage(d_out.dimensions(), depth, p.height, p.width, p.numAttr, "the out cotangent");
    if (with_da)
      CheckImage(d_out_da.dimensions(), depth, p.height, p.width, 2 * p.numAttr,
                 "the out_da cotangent");
    // Attribute gradients are accumulated with atomics.
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(d_attr->typed_data(), 0,
                                          d_attr->element_count() * sizeof(float), stream));
    p.attr = attr.typed_data();
    p.rast = rast.typed_data();
    p.tri = tri.typed_data();
    p.dy = d_out.typed_data();
    p.rastDB = with_da ? rast_db.typed_data() : nullptr;
    p.dda = with_da ? d_out_da.typed_data() : nullptr;
    p.gradAttr = d_attr->typed_data();
    p.gradRaster = d_rast->typed_data();
    p.gradRasterDB = with_da ? d_rast_db->typed_data() : nullptr;
    dim3 block = getLaunchBlockSize(IP_GRAD_MAX_KERNEL_BLOCK_WIDTH,
                                    IP_GRAD_MAX_KERNEL_BLOCK_HEIGHT, p.width, p.height);
    Launch(with_da ? (void*)InterpolateGradKernelDa : (void*)InterpolateGradKernel,
           getLaunchGridSize(block, p.width, p.height, depth), block, p, stream);
  });
}

// ---------------------------------------------------------------------------------------------
// texture (no mip-maps, no cube maps: jaxface's texture contract)

void TextureShapes(TextureKernelParams& p, Dims tex, Dims uv, int32_t filter_mode,
                   int32_t boundary_mode) {
  Require(filter_mode == TEX_MODE_NEAREST || filter_mode == TEX_MODE_LINEAR,
          "filter_mode must be nearest (0) or linear (1), got " + std::to_string(filter_mode));
  Require(boundary_mode == TEX_BOUNDARY_MODE_WRAP || boundary_mode == TEX_BOUNDARY_MODE_CLAMP ||
              boundary_mode == TEX_BOUNDARY_MODE_ZERO,
          "boundary_mode must be wrap (1), clamp (2) or zero (3), got " +
              std::to_string(boundary_mode));
  Require(uv.size() == 4 && uv[0] > 0 && uv[1] > 0 && uv[2] > 0 && uv[3] == 2,
          "uv must have shape (B, H, W, 2), got " + Shape(uv));
  Require(tex.size() == 4 && (tex[0] == 1 || tex[0] == uv[0]) && tex[1] > 0 && tex[2] > 0 &&
              tex[3] > 0,
          "tex must have shape (1 or B, Ht, Wt, C) with B = " + std::to_string(uv[0]) +
              ", got " + Shape(tex));
  Require(tex[1] <= (1 << TEX_MAX_MIP_LEVEL) && tex[2] <= (1 << TEX_MAX_MIP_LEVEL),
          "texture larger than 65536 texels on a side");
  p.filterMode = filter_mode;
  p.boundaryMode = boundary_mode;
  p.texDepth = tex[0];
  p.texHeight = tex[1];
  p.texWidth = tex[2];
  p.channels = tex[3];
  p.n = uv[0];
  p.imgHeight = uv[1];
  p.imgWidth = uv[2];
}

ffi::Error TextureFwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> tex,
                      ffi::Buffer<ffi::F32> uv,
                      ffi::ResultBuffer<ffi::F32> out, int32_t filter_mode,
                      int32_t boundary_mode) {
  return Guarded("texture", [&] {
    UseDevice(device);
    TextureKernelParams p = {};
    TextureShapes(p, tex.dimensions(), uv.dimensions(), filter_mode, boundary_mode);
    CheckImage(out->dimensions(), p.n, p.imgHeight, p.imgWidth, p.channels, "out");
    p.tex[0] = tex.typed_data();
    p.uv = uv.typed_data();
    p.out = out->typed_data();
    // Kernels read 4, 2 or 1 channels at a time.
    const int width = (p.channels % 4 == 0) ? 2 : (p.channels % 2 == 0) ? 1 : 0;
    void* nearest[3] = {(void*)TextureFwdKernelNearest1, (void*)TextureFwdKernelNearest2,
                        (void*)TextureFwdKernelNearest4};
    void* linear[3] = {(void*)TextureFwdKernelLinear1, (void*)TextureFwdKernelLinear2,
                       (void*)TextureFwdKernelLinear4};
    dim3 block = getLaunchBlockSize(TEX_FWD_MAX_KERNEL_BLOCK_WIDTH,
                                    TEX_FWD_MAX_KERNEL_BLOCK_HEIGHT, p.imgWidth, p.imgHeight);
    Launch(filter_mode == TEX_MODE_NEAREST ? nearest[width] : linear[width],
           getLaunchGridSize(block, p.imgWidth, p.imgHeight, p.n), block, p, stream);
  });
}

ffi::Error TextureBwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> tex,
                      ffi::Buffer<ffi::F32> uv,
                      ffi::Buffer<ffi::F32> d_out, ffi::ResultBuffer<ffi::F32> d_tex,
                      ffi::ResultBuffer<ffi::F32> d_uv, int32_t filter_mode,
                      int32_t boundary_mode) {
  return Guarded("texture backward", [&] {
    UseDevice(device);
    TextureKernelParams p = {};
    TextureShapes(p, tex.dimensions(), uv.dimensions(), filter_mode, boundary_mode);
    CheckImage(d_out.dimensions(), p.n, p.imgHeight, p.imgWidth, p.channels,
               "the out cotangent");
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(d_tex->typed_data(), 0,
                                          d_tex->element_count() * sizeof(float), stream));
    const bool nearest = filter_mode == TEX_MODE_NEAREST;
    if (nearest)  // nearest lookups have no uv gradient; the kernel does not write one
      NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(d_uv->typed_data(), 0,
                                            d_uv->element_count() * sizeof(float), stream));
    p.tex[0] = tex.typed_data();
    p.uv = uv.typed_data();
    p.dy = d_out.typed_data();
    p.gradTex[0] = d_tex->typed_data();
    p.gradUV = nearest ? nullptr : d_uv->typed_data();
    dim3 block = getLaunchBlockSize(TEX_GRAD_MAX_KERNEL_BLOCK_WIDTH,
                                    TEX_GRAD_MAX_KERNEL_BLOCK_HEIGHT, p.imgWidth, p.imgHeight);
    Launch(nearest ? (void*)TextureGradKernelNearest : (void*)TextureGradKernelLinear,
           getLaunchGridSize(block, p.imgWidth, p.imgHeight, p.n), block, p, stream);
  });
}

// ---------------------------------------------------------------------------------------------
// antialias

// Work buffer: a counter int4 and up to two work items (int4) per pixel; jaxface allots it
// per image as (B, 8 H W + 4) floats, which covers nvdiffrast's 8 B H W + 4.
int64_t WorkFloats(int64_t batch, int64_t height, int64_t width) {
  return batch * height * width * 8 + 4;
}

void AntialiasShapes(AntialiasKernelParams& p, Dims color, Dims rast, Dims pos, Dims tri) {
  CheckPosTri(pos, tri);
  Require(color.size() == 4 && color[0] == pos[0] && color[1] > 0 && color[2] > 0 && color[3] > 0,
          "color must have shape (B, H, W, C) with B = " + std::to_string(pos[0]) + ", got " +
              Shape(color));
  CheckImage(rast, color[0], color[1], color[2], 4, "rast");
  p.instance_mode = 1;
  p.n = color[0];
  p.height = color[1];
  p.width = color[2];
  p.channels = color[3];
  p.numVertices = pos[1];
  p.numTriangles = tri[0];
  p.xh = .5f * p.width;
  p.yh = .5f * p.height;
}

int OccupancyGrid(void* kernel, int threads, int device) {
  int blocks_per_sm = 0, sm_count = 0;
  NVDR_CHECK_CUDA_ERROR(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks_per_sm, kernel,
                                                                      threads, 0));
  NVDR_CHECK_CUDA_ERROR(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device));
  return blocks_per_sm * sm_count;
}

ffi::Error AntialiasFwd(cudaStream_t stream, int32_t device, ffi::ScratchAllocator scratch,
                        ffi::Buffer<ffi::F32> color, ffi::Buffer<ffi::F32> rast,
                        ffi::Buffer<ffi::F32> pos, ffi::Buffer<ffi::S32> tri,
                        ffi::ResultBuffer<ffi::F32> out, ffi::ResultBuffer<ffi::F32> work) {
  return Guarded("antialias", [&] {
    AntialiasKernelParams p = {};
    AntialiasShapes(p, color.dimensions(), rast.dimensions(), pos.dimensions(), tri.dimensions());
    CheckImage(out->dimensions(), p.n, p.height, p.width, p.channels, "out");
    Require(work->element_count() >= static_cast<size_t>(WorkFloats(p.n, p.height, p.width)),
            "the work buffer is too small");
    UseDevice(device);

    // The edge -> opposite-vertex hash of the mesh, rebuilt per call in XLA's scratch memory.
    p.allocTriangles = 64;
    while (p.allocTriangles < p.numTriangles) p.allocTriangles <<= 1;
    const size_t hash_bytes = static_cast<size_t>(p.allocTriangles) *
                              AA_HASH_ELEMENTS_PER_TRIANGLE(p.allocTriangles) * sizeof(uint4);
    std::optional<void*> hash = scratch.Allocate(hash_bytes, 16);
    if (!hash.has_value())
      throw std::runtime_error("XLA could not allot " + std::to_string(hash_bytes) +
                               " bytes of scratch memory for the topology hash");
    p.evHash = static_cast<uint4*>(*hash);
    p.tri = tri.typed_data();
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(p.evHash, 0, hash_bytes, stream));
    Launch((void*)AntialiasFwdMeshKernel,
           dim3((p.numTriangles - 1) / AA_MESH_KERNEL_THREADS_PER_BLOCK + 1),
           dim3(AA_MESH_KERNEL_THREADS_PER_BLOCK), p, stream);

    NVDR_CHECK_CUDA_ERROR(cudaMemcpyAsync(out->typed_data(), color.typed_data(),
                                          color.element_count() * sizeof(float),
                                          cudaMemcpyDeviceToDevice, stream));
    p.color = color.typed_data();
    p.rasterOut = rast.typed_data();
    p.pos = pos.typed_data();
    p.output = out->typed_data();
    p.workBuffer = reinterpret_cast<int4*>(work->typed_data());
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(p.workBuffer, 0, sizeof(int4), stream));
    dim3 block(AA_DISCONTINUITY_KERNEL_BLOCK_WIDTH, AA_DISCONTINUITY_KERNEL_BLOCK_HEIGHT, 1);
    Launch((void*)AntialiasFwdDiscontinuityKernel,
           getLaunchGridSize(block, p.width, p.height, p.n), block, p, stream);
    Launch((void*)AntialiasFwdAnalysisKernel,
           dim3(OccupancyGrid((void*)AntialiasFwdAnalysisKernel,
                              AA_ANALYSIS_KERNEL_THREADS_PER_BLOCK, device)),
           dim3(AA_ANALYSIS_KERNEL_THREADS_PER_BLOCK), p, stream);
  });
}

// `work_out` aliases `work` (input_output_aliases): the gradient kernel resets and counts a
// counter in it.
ffi::Error AntialiasBwd(cudaStream_t stream, int32_t device, ffi::Buffer<ffi::F32> color,
                        ffi::Buffer<ffi::F32> rast, ffi::Buffer<ffi::F32> pos,
                        ffi::Buffer<ffi::S32> tri, ffi::Buffer<ffi::F32> d_out,
                        ffi::Buffer<ffi::F32> work, ffi::ResultBuffer<ffi::F32> d_color,
                        ffi::ResultBuffer<ffi::F32> d_pos, ffi::ResultBuffer<ffi::F32> work_out) {
  return Guarded("antialias backward", [&] {
    AntialiasKernelParams p = {};
    AntialiasShapes(p, color.dimensions(), rast.dimensions(), pos.dimensions(), tri.dimensions());
    CheckImage(d_out.dimensions(), p.n, p.height, p.width, p.channels, "the out cotangent");
    Require(work.element_count() >= static_cast<size_t>(WorkFloats(p.n, p.height, p.width)),
            "the work buffer is too small");
    UseDevice(device);
    if (work_out->typed_data() != work.typed_data())
      NVDR_CHECK_CUDA_ERROR(cudaMemcpyAsync(work_out->typed_data(), work.typed_data(),
                                            work.element_count() * sizeof(float),
                                            cudaMemcpyDeviceToDevice, stream));
    NVDR_CHECK_CUDA_ERROR(cudaMemcpyAsync(d_color->typed_data(), d_out.typed_data(),
                                          d_out.element_count() * sizeof(float),
                                          cudaMemcpyDeviceToDevice, stream));
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(d_pos->typed_data(), 0,
                                          d_pos->element_count() * sizeof(float), stream));
    p.color = color.typed_data();
    p.rasterOut = rast.typed_data();
    p.tri = tri.typed_data();
    p.pos = pos.typed_data();
    p.dy = d_out.typed_data();
    p.gradColor = d_color->typed_data();
    p.gradPos = d_pos->typed_data();
    p.workBuffer = reinterpret_cast<int4*>(work_out->typed_data());
    NVDR_CHECK_CUDA_ERROR(cudaMemsetAsync(&p.workBuffer[0].y, 0, sizeof(int), stream));
    Launch((void*)AntialiasGradKernel,
           dim3(OccupancyGrid((void*)AntialiasGradKernel, AA_GRAD_KERNEL_THREADS_PER_BLOCK,
                              device)),
           dim3(AA_GRAD_KERNEL_THREADS_PER_BLOCK), p, stream);
  });
}

// Every handler takes the stream and the device first.
auto CudaBinding() {
  return ffi::Ffi::Bind().Ctx<ffi::PlatformStream<cudaStream_t>>().Ctx<ffi::DeviceOrdinal>();
}

using F32 = ffi::Buffer<ffi::F32>;
using S32 = ffi::Buffer<ffi::S32>;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Handler symbols, registered from Python with jax.ffi.register_ffi_target(platform="CUDA").
// None is marked command-buffer compatible: CudaRaster synchronises its stream and allocates.

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrRasterizeFwd, RasterizeFwd,
                              CudaBinding().Arg<F32>().Arg<S32>().Ret<F32>().Ret<F32>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrRasterizeBwd, RasterizeBwd,
                              CudaBinding()
                                  .Arg<F32>().Arg<S32>().Arg<F32>().Arg<F32>().Arg<F32>()
                                  .Ret<F32>()
                                  .Attr<bool>("grad_db"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrInterpolateFwd, InterpolateFwd,
                              CudaBinding()
                                  .Arg<F32>().Arg<F32>().Arg<S32>().Arg<F32>()
                                  .Ret<F32>().Ret<F32>()
                                  .Attr<bool>("with_da"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrInterpolateBwd, InterpolateBwd,
                              CudaBinding()
                                  .Arg<F32>().Arg<F32>().Arg<S32>().Arg<F32>().Arg<F32>()
                                  .Arg<F32>()
                                  .Ret<F32>().Ret<F32>().Ret<F32>()
                                  .Attr<bool>("with_da"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrTextureFwd, TextureFwd,
                              CudaBinding()
                                  .Arg<F32>().Arg<F32>()
                                  .Ret<F32>()
                                  .Attr<int32_t>("filter_mode")
                                  .Attr<int32_t>("boundary_mode"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrTextureBwd, TextureBwd,
                              CudaBinding()
                                  .Arg<F32>().Arg<F32>().Arg<F32>()
                                  .Ret<F32>().Ret<F32>()
                                  .Attr<int32_t>("filter_mode")
                                  .Attr<int32_t>("boundary_mode"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrAntialiasFwd, AntialiasFwd,
                              CudaBinding()
                                  .Ctx<ffi::ScratchAllocator>()
                                  .Arg<F32>().Arg<F32>().Arg<F32>().Arg<S32>()
                                  .Ret<F32>().Ret<F32>());

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxfaceNvdrAntialiasBwd, AntialiasBwd,
                              CudaBinding()
                                  .Arg<F32>().Arg<F32>().Arg<F32>().Arg<S32>().Arg<F32>()
                                  .Arg<F32>()
                                  .Ret<F32>().Ret<F32>().Ret<F32>());
