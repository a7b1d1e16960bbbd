/* loss.c: the losses the trainer and the engine optimise, with the
 * reductions of torch.nn.MSELoss and torch.nn.CrossEntropyLoss (mean). Each
 * returns the loss and writes dL/dy in place of, or next to, the outputs.
 * No allocation: the engine calls these on the audio thread. */
#include <math.h>

#include "cbrnn/cbrnn_model.h"

float cbrnn_loss_mse(float *dy, const float *y, const float *target, int rows, int dim)
{
    size_t n = (size_t)(rows > 0 ? rows : 0) * (size_t)(dim > 0 ? dim : 0);
    if (n == 0)
        return 0.0f;
    double sum = 0.0;
    float scale = (float)(2.0 / (double)n);
    for (size_t i = 0; i < n; i++) {
        float d = y[i] - target[i];
        sum += (double)d * d;
        dy[i] = scale * d;
    }
    return (float)(sum / (double)n);
}

float cbrnn_loss_xent(float *dy, int *n_correct, const float *logits, const int *labels,
                      int rows, int classes)
{
    int counted = 0, correct = 0, bad_label = 0;
    for (int r = 0; r < rows; r++) {
        if (labels[r] >= classes)
            bad_label = 1;
        else if (labels[r] >= 0)
            counted++;
    }
    double sum = 0.0;
    float inv = counted ? 1.0f / (float)counted : 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *z = logits + (size_t)r * classes;
        float *d = dy + (size_t)r * classes;
        int lab = labels[r];
        if (lab < 0 || lab >= classes) {
            for (int k = 0; k < classes; k++)
                d[k] = 0.0f;
            continue;
        }
        /* log-sum-exp around the maximum, as torch's log_softmax. */
        int arg = 0;
        for (int k = 1; k < classes; k++)
            if (z[k] > z[arg])
                arg = k;
        float mx = z[arg];
        double se = 0.0;
        for (int k = 0; k < classes; k++)
            se += exp((double)z[k] - mx);
        double lse = mx + log(se);
        sum += lse - z[lab];
        correct += arg == lab;
        for (int k = 0; k < classes; k++) {
            float p = (float)exp((double)z[k] - lse);
            d[k] = (p - (k == lab ? 1.0f : 0.0f)) * inv;
        }
    }
    if (n_correct)
        *n_correct = correct;
    if (bad_label)
        return NAN;
    return counted ? (float)(sum / counted) : 0.0f;
}
