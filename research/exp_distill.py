import time, sys, numpy as np, torch
torch.set_num_threads(2)
from engine.data import *; from engine.graph import *; from engine.features import *; from engine.cnn import *
xtr,ytr,xte,yte=load_dataset('mnist')
X=to_float(np.concatenate([xtr,xte])); Y=np.concatenate([ytr,yte])
cache=np.load('/tmp/poisson_cache.npz')
def conf_weights(u,frac):
    pred=u.argmax(1); srt=np.sort(u,1); margin=srt[:,-1]-srt[:,-2]
    w=np.zeros(len(u))
    for c in range(10):
        ii=np.flatnonzero(pred==c); thr=np.quantile(margin[ii],1-frac); w[ii[margin[ii]>=thr]]=1
    return pred,w
seed=int(sys.argv[1]); frac=float(sys.argv[2]); epochs=float(sys.argv[3]); width=tuple(int(a) for a in sys.argv[4].split(','))
u=cache[f'u{seed}']; lab=sample_labels(ytr,10,seed)
pred,w=conf_weights(u,frac)
print('pseudo acc kept',np.mean(pred[w>0]==Y[w>0]),'n',int(w.sum()),'all',np.mean(pred==Y))
cfg=DistillConfig(epochs=epochs,width=width)
pred[lab]=ytr[lab]; w[lab]=cfg.labeled_weight
t=time.time(); m=train_distill(X,pred,w,cfg,10,seed=seed,verbose=True); tt=time.time()-t
lo=predict_logits(m,X); p=lo.argmax(1)
print(f'seed={seed} frac={frac} ep={epochs} width={width} train={tt:.0f}s test={np.mean(p[60000:]==yte):.4f} all={np.mean(p==Y):.4f}')
