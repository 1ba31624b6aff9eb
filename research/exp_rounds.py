import time, sys, numpy as np, torch
torch.set_num_threads(2)
from engine.data import *; from engine.graph import *; from engine.features import *; from engine.cnn import *
xtr,ytr,xte,yte=load_dataset('mnist')
X=to_float(np.concatenate([xtr,xte])); Y=np.concatenate([ytr,yte])
cache=np.load('/tmp/poisson_cache.npz')
seed=int(sys.argv[1]); epochs=float(sys.argv[2]); width=tuple(int(a) for a in sys.argv[3].split(',')); rounds=int(sys.argv[4])
u=cache[f'u{seed}']; lab=sample_labels(ytr,10,seed)
cfg=DistillConfig(epochs=epochs,width=width)
pred=u.argmax(1); w=np.ones(70000)
T0=time.time()
for r in range(rounds):
    pred[lab]=ytr[lab]; w[lab]=cfg.labeled_weight
    t=time.time(); m=train_distill(X,pred,w,cfg,10,seed=seed+r); tt=time.time()-t
    lo,emb=predict_logits(m,X,embedding=True); p=lo.argmax(1)
    print(f'round {r} seed={seed} ep={epochs} width={width} train={tt:.0f}s cnn test={np.mean(p[60000:]==yte):.4f} all={np.mean(p==Y):.4f}',flush=True)
    t=time.time(); idx,dist=knn(emb,10); W=knn_graph(idx,dist); u2=poisson_learning(W,lab,ytr[lab],10); tg=time.time()-t
    p2=u2.argmax(1)
    print(f'   emb-graph {tg:.0f}s test={np.mean(p2[60000:]==yte):.4f} all={np.mean(p2==Y):.4f}; agree cnn&graph frac={np.mean(p==p2):.4f} acc on agree={np.mean((p==Y)[p==p2]):.4f}',flush=True)
    pred=p2.copy(); w=(p==p2).astype(float)
print('total',time.time()-T0)
