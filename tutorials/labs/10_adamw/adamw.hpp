/// \file
/// \brief Lab 10: the AdamW update — moment estimates, bias correction, decoupled weight decay.
///
/// You write adamw_step() in lab.cpp, on float64 parameters. The grader runs it next to
/// qkv::optim::AdamW on the same parameters and gradients, step by step, element by element.
#pragma once

#include <cstdint>

#include "support/lab.hpp"

namespace lab {

/// \brief AdamW's hyper-parameters (PyTorch's defaults).
struct AdamWHyper {
    double lr = 1e-3;            ///< learning rate \f$ \eta \f$
    double beta1 = 0.9;          ///< decay of the gradient's running mean \f$ \beta_1 \f$
    double beta2 = 0.999;        ///< decay of the squared gradient's running mean \f$ \beta_2 \f$
    double eps = 1e-8;           ///< \f$ \epsilon \f$, added to \f$ \sqrt{\hat v} \f$
    double weight_decay = 1e-2;  ///< decoupled weight decay \f$ \lambda \f$
};

/// \brief What AdamW remembers about one parameter between steps.
struct AdamWState {
    qkv::Tensor m;       ///< running mean of the gradient (shaped like the parameter); undefined before the first step
    qkv::Tensor v;       ///< running mean of the squared gradient; undefined before the first step
    std::int64_t t = 0;  ///< number of steps taken
};

/// \brief One AdamW step, in place:
/// \f$ t \leftarrow t+1 \f$, \f$ \theta \leftarrow \theta(1 - \eta\lambda) \f$,
/// \f$ m \leftarrow \beta_1 m + (1-\beta_1) g \f$, \f$ v \leftarrow \beta_2 v + (1-\beta_2) g^2 \f$,
/// \f$ \theta \leftarrow \theta - \eta\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon} \f$.
/// \param param the parameter θ (f64), updated in place \param grad its gradient g (same shape)
/// \param state m, v and t, updated \param h the hyper-parameters (the learning rate may change between steps)
void adamw_step(qkv::Tensor& param, const qkv::Tensor& grad, AdamWState& state, const AdamWHyper& h);

}  // namespace lab
